"""End to end through the thin tools: train 2 iterations, resume, test with overlays and
bit-mask output, benchmark. Tiny synthetic data, tiny crops, full-size models."""
import glob
import json
import os.path as osp
import runpy
import sys

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from aoissl_mm.datasets.io import read_multilabel_mask

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CROP = 64


@pytest.fixture
def tiny_config(tiny_training_config, tmp_path):
    """The CPU recipe on a tiny synthetic root, 2 iterations, a checkpoint at the end."""
    cfg = tiny_training_config('fastervit0_upernet_aoi_cpu.py')
    # the real TimeBudgetHook stays (it drives the LR); its budget outlasts the 2-4 iterations
    (hook, ) = cfg.custom_hooks
    assert hook.type == 'TimeBudgetHook'
    hook.budget_s = 3600
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=2)
    path = str(tmp_path / 'tiny.py')
    cfg.dump(path)
    return path


def _read_checkpoint(path):
    from aoissl_mm.utils.checkpoint import safe_torch_load
    return safe_torch_load(path)


def _adam_steps(ckpt) -> int:
    steps = {int(state['step']) for state in ckpt['optimizer']['state'].values()}
    assert len(steps) == 1, steps
    return steps.pop()


def _budget_spent(ckpt) -> float:
    return float(ckpt['message_hub']['runtime_info']['time_budget_elapsed_s'])


def _run(script, args, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [script] + args)
    runpy.run_path(osp.join(ROOT, 'tools', script), run_name='__main__')


def test_train_resume_test_show_out(tiny_config, tmp_path, monkeypatch):
    cfg_path = tiny_config
    work = str(tmp_path / 'work')
    _run('train.py', [cfg_path, '--work-dir', work], monkeypatch)
    ckpt2 = _read_checkpoint(osp.join(work, 'iter_2.pth'))
    # resume and train on to iteration 4 (weights-only loading of an mmengine checkpoint)
    _run('train.py', [cfg_path, '--work-dir', work, '--resume',
                      '--cfg-options', 'train_cfg.max_iters=4'], monkeypatch)
    ckpt4 = _read_checkpoint(osp.join(work, 'iter_4.pth'))
    # a resumed run continues the optimiser state (a fresh start or load_from would count
    # 2 steps, not 4) and the time budget already spent; its log says where it resumed
    assert _adam_steps(ckpt2) == 2 and _adam_steps(ckpt4) == 4
    assert ckpt4['meta']['iter'] == 4
    spent2, spent4 = _budget_spent(ckpt2), _budget_spent(ckpt4)
    assert 0 < spent2 < spent4
    logs = sorted(glob.glob(osp.join(work, '*', '*.log')))
    assert len(logs) == 2 and 'resumed epoch: 0, iter: 2' in open(logs[-1]).read()
    # a typo in --cfg-options is refused, naming the key
    with pytest.raises(KeyError, match='num_clases'):
        _run('train.py', [cfg_path, '--work-dir', work,
                          '--cfg-options', 'model.decode_head.num_clases=3'], monkeypatch)

    show, out = str(tmp_path / 'show'), str(tmp_path / 'out')
    _run('test.py', [cfg_path, osp.join(work, 'iter_4.pth'), '--work-dir', work,
                     '--show-dir', show, '--out', out], monkeypatch)
    # per-class metrics were written by mmengine's test loop
    metric_files = glob.glob(osp.join(work, '*', '*.json'))
    results = [json.load(open(f)) for f in metric_files]
    assert any('IoU.wire' in r and 'mIoU' in r for r in results)
    preds = sorted(glob.glob(osp.join(out, '*.png')))
    assert len(preds) == 2
    mask = read_multilabel_mask(preds[0], 4)
    assert mask.shape == (CROP, CROP, 4)
    overlays = sorted(glob.glob(osp.join(show, '**', '*.png'), recursive=True))
    assert len(overlays) == 2
    img = cv2.imread(overlays[0])
    assert img.shape[1] >= 2 * CROP  # ground truth and prediction side by side


def test_num_classes_mismatch_is_named(tiny_config, tmp_path, monkeypatch):
    cfg_path = tiny_config
    with pytest.raises(ValueError, match='num_classes = 3'):
        _run('train.py', [cfg_path, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                          'model.decode_head.num_classes=3', 'model.decode_head.out_channels=3',
                          'model.decode_head.class_names=[a,b,c]'], monkeypatch)


def test_benchmark_tool_writes_json(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / 'b.json')
    _run('benchmark.py', [osp.join(ROOT, 'configs', 'vit-tiny_upernet_aoi.py'), '--crop', '64',
                          '--batch', '1', '--warmup', '1', '--iters', '1', '--json', out],
         monkeypatch)
    res = json.load(open(out))
    assert res['crop_size'] == [64, 64] and res['crops_per_s'] > 0
    assert 'crops/s' in capsys.readouterr().out
    assert np.isfinite(res['peak_mem_mib'])


def test_tta_averages_probabilities_of_flipped_views(tiny_config, tmp_path, monkeypatch):
    """--tta runs identity + h-flip + v-flip views and averages their probabilities."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from aoissl_mm.models.segmentors import MultiLabelSegTTAModel

    class Module:
        thresholds = [0.5, 0.3]

    tta = MultiLabelSegTTAModel.__new__(MultiLabelSegTTAModel)
    object.__setattr__(tta, '_modules', {})
    tta.__dict__['module'] = Module()
    views = []
    for p0, p1 in ((0.2, 0.2), (0.9, 0.45), (0.7, 0.4)):  # means 0.6 and 0.35
        s = SegDataSample()
        s.seg_logits = PixelData(data=torch.tensor([[[p0]], [[p1]]]))
        s.gt_sem_seg = PixelData(data=torch.tensor([[[1]], [[0]]], dtype=torch.uint8))
        s.set_metainfo(dict(img_path=f'v{p0}.png'))
        views.append(s)
    (merged, ) = tta.merge_preds([views])
    assert torch.allclose(merged.seg_logits.data.flatten(), torch.tensor([0.6, 0.35]))
    # class 0: 0.6 >= 0.5; class 1: 0.35 >= its own threshold 0.3 (no view reached 0.5)
    assert merged.pred_sem_seg.data.flatten().tolist() == [1, 1]
    assert merged.img_path == 'v0.2.png'  # the identity view's metadata and ground truth

    cfg_path = tiny_config
    cfg = Config.fromfile(cfg_path)
    cfg.tta_pipeline[2]['size'] = (CROP, CROP)
    cfg.dump(cfg_path)
    work = str(tmp_path / 'work')
    _run('train.py', [cfg_path, '--work-dir', work], monkeypatch)
    out = str(tmp_path / 'out_tta')
    _run('test.py', [cfg_path, osp.join(work, 'iter_2.pth'), '--work-dir', work, '--tta',
                     '--out', out], monkeypatch)
    preds = sorted(glob.glob(osp.join(out, '*.png')))
    assert len(preds) == 2 and read_multilabel_mask(preds[0], 4).shape == (CROP, CROP, 4)
