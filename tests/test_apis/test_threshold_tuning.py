"""Per-class threshold tuning: counts against a hand-computed example and a brute-force loop,
and the tool end to end on a tiny config (chosen thresholds = brute-force argmax of the IoU)."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from aoissl_mm.apis import threshold_counts, tune_thresholds


def test_counts_hand_computed():
    scores = torch.tensor([[[0.1, 0.4], [0.6, 0.9]]])       # one class, 2 x 2
    gt = torch.tensor([[[0, 1], [1, 255]]], dtype=torch.uint8)  # 255 ignored
    tp, fp, fn = threshold_counts(scores, gt, [0.1, 0.5, 0.95])
    # t=0.1: positive 0.1, 0.4, 0.6 (0.9 ignored) -> tp 2 (0.4, 0.6), fp 1 (0.1), fn 0
    # t=0.5: positive 0.6 -> tp 1, fp 0, fn 1 (0.4);  t=0.95: nothing -> tp 0, fn 2
    assert tp.tolist() == [[2, 1, 0]]
    assert fp.tolist() == [[1, 0, 0]]
    assert fn.tolist() == [[0, 1, 2]]


def test_counts_equal_brute_force():
    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.random((3, 17, 23)).astype(np.float32))
    scores[0, 0, :5] = torch.tensor([0.25, 0.5, 0.75, 0.05, 0.95])  # exactly on thresholds
    gt = torch.from_numpy(rng.choice([0, 1, 255], size=(3, 17, 23), p=[0.6, 0.3, 0.1])
                          .astype(np.uint8))
    grid = np.round(np.arange(1, 20) * 0.05, 2)
    tp, fp, fn = threshold_counts(scores, gt, grid)
    for c in range(3):
        for j, t in enumerate(grid):
            pred = scores[c].double() >= t
            assert tp[c, j] == int((pred & (gt[c] == 1)).sum())
            assert fp[c, j] == int((pred & (gt[c] == 0)).sum())
            assert fn[c, j] == int((~pred & (gt[c] == 1)).sum())


@pytest.mark.parametrize('grid', [[0.5, 0.5], [0.6, 0.2]])
def test_counts_refuse_a_grid_that_is_not_ascending(grid):
    with pytest.raises(ValueError, match='ascending'):
        threshold_counts(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.uint8), grid)


def test_tool_picks_the_brute_force_best_threshold(tmp_path, tiny_training_config,
                                                   random_segmentor_checkpoint, seg_scope):
    from mmengine.runner import Runner

    from aoissl_mm.utils.runner_setup import check_dataset_classes
    cfg = tiny_training_config('fastervit0_upernet_aoi_cpu.py')
    cfg_path = str(tmp_path / 'tiny.py')
    cfg.dump(cfg_path)
    model, ckpt = random_segmentor_checkpoint(tmp_path, cfg_path, seed=1)
    grid = [0.3, 0.4, 0.5, 0.6, 0.7]
    out = str(tmp_path / 'thr')
    result = tune_thresholds(cfg_path, ckpt, out, split='val', grid=grid, progress=False)
    # brute force: the same model's probabilities, IoU summed over the split per threshold
    model.eval()
    check_dataset_classes(cfg, fill_class_names=True)
    loader = Runner.build_dataloader(cfg.val_dataloader)
    inter = np.zeros((4, len(grid)))
    union = np.zeros((4, len(grid)))
    with torch.no_grad():
        for data in loader:
            data = model.data_preprocessor(data, False)
            for s in model.predict(data['inputs'], data['data_samples']):
                p, g = s.seg_logits.data, s.gt_sem_seg.data
                for c in range(4):
                    valid = g[c] <= 1
                    for j, t in enumerate(grid):
                        pred = (p[c] >= t) & valid
                        truth = (g[c] == 1) & valid
                        inter[c, j] += int((pred & truth).sum())
                        union[c, j] += int((pred | truth).sum())
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    for c, name in enumerate(result['classes']):
        if np.isfinite(iou[c]).any():
            assert result['thresholds'][c] == grid[int(np.nanargmax(iou[c]))]
            assert result['iou_at_chosen'][name] == pytest.approx(100 * np.nanmax(iou[c]),
                                                                  abs=0.01)
        assert result['iou_at_config'][name] == pytest.approx(100 * iou[c, 2], abs=0.01,
                                                              nan_ok=True)
    saved = json.load(open(osp.join(out, 'best.json')))
    assert saved['thresholds'] == result['thresholds']
    assert saved['cfg_options'].startswith('model.threshold=[')
    assert osp.getsize(osp.join(out, 'thresholds.png')) > 0
    lines = open(osp.join(out, 'thresholds.csv')).read().splitlines()
    assert lines[0].startswith('threshold,IoU.wire') and len(lines) == 1 + len(grid)


def test_tool_refuses_a_retrieval_config(tmp_path):
    cfg = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
                   'retrieval', 'retrieval-patch-sim_vit-tiny_aoi-512.py')
    with pytest.raises(TypeError, match='tune_retrieval'):
        tune_thresholds(cfg, 'unused.pth', str(tmp_path))
