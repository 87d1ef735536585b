"""tools/tune_retrieval.py on tiny synthetic data; one fold's grid-search IoUs against a
RetrievalSegmentor memory built with build_memory from that fold's images, its predictions on the
held-out images and an IoU computed by hand."""
import csv
import json
import os.path as osp
import runpy
import sys

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CROP, C = 56, 4  # not a multiple of the patch (16): padding is added and cropped off again
CFG = osp.join(ROOT, 'configs', 'retrieval', 'retrieval-patch-sim_vit-tiny_aoi-512.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory, tiny_retrieval_config):
    tmp = tmp_path_factory.mktemp('tune')
    data_root, path, cfg = tiny_retrieval_config(
        tmp, CROP, num_train=6, num_test=1, batch_size=1,
        memory=dict(index_type='flat', device='cpu'))
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    backbone = MODELS.build(cfg.model.backbone)
    ckpt = str(tmp / 'backbone.pth')
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in backbone.state_dict().items()}),
               ckpt)
    return tmp, path, ckpt


def _loader(cfg, indices):
    from mmengine.runner import Runner

    from aoissl_mm.apis import memory_dataloader_cfg
    loader = memory_dataloader_cfg(cfg)
    loader['dataset']['indices'] = [int(i) for i in indices]
    return Runner.build_dataloader(loader)


@pytest.mark.parametrize('sampling', [None, dict(per_image=5, seed=3)])
def test_fold_ious_equal_segmentor_predictions_and_hand_iou(setup, sampling):
    from mmengine.runner import Runner

    from aoissl_mm.apis import init_retrieval_model, memory_dataloader_cfg
    from aoissl_mm.apis.retrieval_tuning import extract_tuning_data
    from aoissl_mm.models.retrieval.tuning import cross_validate, make_grid
    _, path, ckpt = setup
    model, cfg = init_retrieval_model(path, ckpt)
    data = extract_tuning_data(model, Runner.build_dataloader(memory_dataloader_cfg(cfg)),
                               progress=False)
    assert data.num_images == 6 and data.keys.shape == (6 * 16, 384)
    points = (make_grid('similarity', ks=[1, 4], thresholds=[0.5, 0.2]) +
              make_grid('attention', ks=[3], betas=[0.1], thresholds=[0.3]))
    result = cross_validate(data, points, n_splits=3, memory_options=model.memory_cfg,
                            memory_sampling=sampling, progress=False)
    fold = 1
    train, test = result.folds[fold]
    model.memory_sampling = sampling  # a bounded memory: the same patches must be kept
    model.build_memory(_loader(cfg, train), progress=False)
    assert len(model.memory) == len(train) * (16 if sampling is None else 5)
    checked = 0
    for g, point in enumerate(points):
        model.ks = (point.k, ) * C
        model.thresholds = (point.threshold, ) * C
        model.betas = (point.beta or 0.02, ) * C
        model.aggregation = point.aggregation
        inter, union = np.zeros(C), np.zeros(C)
        for batch in _loader(cfg, test):
            batch = model.data_preprocessor(batch, False)
            sample = model.predict(batch['inputs'], batch['data_samples'])[0]
            pred = sample.pred_sem_seg.data.numpy().astype(bool)
            gt = batch['data_samples'][0].gt_sem_seg.data.numpy()
            assert pred.shape == gt.shape == (C, CROP, CROP)
            pred &= gt != 255
            inter += (pred & (gt == 1)).sum((1, 2))
            union += (pred | (gt == 1)).sum((1, 2))
        expected = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
        np.testing.assert_allclose(result.ious[g, fold], expected, rtol=0, atol=1e-12)
        checked += int(np.isfinite(expected).sum())
    assert checked >= 6  # most classes are present in the held-out images


def _run(args, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['tune_retrieval.py'] + args)
    runpy.run_path(osp.join(ROOT, 'tools', 'tune_retrieval.py'), run_name='__main__')


def test_tool_writes_results_best_config_and_plot(setup, monkeypatch, capsys):
    tmp, path, ckpt = setup
    out = str(tmp / 'out')
    _run([path, ckpt, '--out', out, '--folds', '3', '--aggregation', 'both', '--ks', '1', '3',
          '80', '--betas', '0.1', '0.02', '--thresholds', '0.5', '0.2'], monkeypatch)
    printed = capsys.readouterr().out
    assert 'mean IoU' in printed and 'model = dict(' in printed
    with open(osp.join(out, 'results.csv')) as f:
        rows = list(csv.DictReader(f))
    grid = 3 * 2 + 3 * 2 * 2  # similarity k x t, attention k x beta x t
    assert len(rows) == grid * C
    assert set(rows[0]) >= {'aggregation', 'k', 'beta', 'threshold', 'class', 'fold_0',
                            'fold_2', 'mean', 'std', 'mean_minus_std'}
    assert {r['fold_0'] for r in rows if r['k'] == '80'} == {'nan'}  # 4 memory images: skipped
    with open(osp.join(out, 'best.json')) as f:
        best = json.load(f)
    assert len(best['classes']) == C and 'wire' in best['classes'] and best['num_images'] == 6
    assert any('k=[80] skipped' in n for n in best['notes'])
    held_out = [i for f in best['fold_images'] for i in f]  # every image held out once
    assert len(best['fold_images']) == 3 and len(held_out) == len(set(held_out)) == 6
    chosen = best['chosen_aggregation']
    # every best row is the arg-max of its class's mean in results.csv
    for entry in best['best'][chosen]:
        means = [float(r['mean']) for r in rows if r['class'] == entry['class']
                 and r['aggregation'] == chosen and r['mean'] != 'nan']
        if entry['mean'] is not None:
            assert entry['mean'] == pytest.approx(max(means), abs=1e-6)
    # best_config.py: a valid override of the config
    snippet = open(osp.join(out, 'best_config.py')).read()
    scope = {}
    exec(snippet, scope)
    assert scope['model'] == best['best_model_cfg']
    assert scope['model']['k'] == [e['k'] for e in best['best'][chosen]]
    leaf = str(tmp / 'leaf.py')
    with open(leaf, 'w') as f:
        f.write(f"_base_ = ['{path}']\n" + snippet)
    from aoissl_mm.apis import init_retrieval_model
    model, _ = init_retrieval_model(leaf, ckpt)
    assert list(model.ks) == scope['model']['k'] and model.aggregation == chosen
    with open(osp.join(out, 'tuning.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_tool_errors(setup, monkeypatch, tmp_path):
    _, path, ckpt = setup
    with pytest.raises(ValueError, match='at least 10 images, got 6'):
        _run([path, ckpt, '--out', str(tmp_path), '--folds', '10'], monkeypatch)
    from aoissl_mm.apis.retrieval_tuning import tune_retrieval
    with pytest.raises(ValueError, match="'similarity', 'attention' or 'both'"):
        tune_retrieval(path, ckpt, str(tmp_path), aggregation='mean', progress=False)
    with pytest.raises(ValueError, match='grid is empty: --thresholds'):
        tune_retrieval(path, ckpt, str(tmp_path), thresholds=[], progress=False)
