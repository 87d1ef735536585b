"""K-fold split, grid, fold evaluation and per-class selection of the retrieval search (spec §8.4),
against hand examples and a brute-force numpy evaluation."""
import math

import numpy as np
import pytest
import torch

from aoissl_mm.models.retrieval.tuning import (
    DEFAULT_GRIDS,
    IGNORE,
    GridPoint,
    TuningData,
    cross_validate,
    evaluate_fold,
    fold_statistics,
    kfold_splits,
    make_grid,
    select_best,
)

OPTS = dict(device='cpu', backend='torch')


def test_kfold_matches_hand_example():
    # sklearn KFold(5, shuffle=True, random_state=42): RandomState(42).shuffle(arange(n)) gives
    # n=10: [8 1 5 0 7 2 9 4 3 6] -> folds of 2; n=7: [0 1 5 2 4 3 6] -> sizes 2, 2, 1, 1, 1
    expected = {10: [[1, 8], [0, 5], [2, 7], [4, 9], [3, 6]],
                7: [[0, 1], [2, 5], [4], [3], [6]]}
    for n, tests in expected.items():
        splits = kfold_splits(n, 5)
        assert [t.tolist() for _, t in splits] == tests
        for train, test in splits:
            assert sorted(train.tolist() + test.tolist()) == list(range(n))
        assert sorted(i for _, t in splits for i in t) == list(range(n))  # each once
    with pytest.raises(ValueError, match='at least 5 images, got 3'):
        kfold_splits(3, 5)
    with pytest.raises(ValueError, match='>= 2'):
        kfold_splits(3, 1)


def test_grids_of_the_spec_and_errors():
    attention = make_grid('attention')
    assert len(attention) == 5 * 5 * 5
    assert attention[0] == GridPoint('attention', 2, 0.3, 0.5)
    assert attention[1] == GridPoint('attention', 10, 0.3, 0.5)  # k innermost
    assert attention[5] == GridPoint('attention', 2, 0.15, 0.5)
    similarity = make_grid('similarity')
    assert len(similarity) == 5 * 6 and {p.beta for p in similarity} == {None}
    assert [p.k for p in similarity[:6]] == list(DEFAULT_GRIDS['similarity']['ks'])
    assert make_grid('similarity', ks=[3], thresholds=[0.4]) == [
        GridPoint('similarity', 3, None, 0.4)]
    with pytest.raises(ValueError, match="aggregation must be one of"):
        make_grid('mean')
    with pytest.raises(ValueError, match='grid is empty: --ks'):
        make_grid('similarity', ks=[])
    with pytest.raises(ValueError, match='grid is empty: --betas'):
        make_grid('attention', betas=[])
    with pytest.raises(ValueError, match='inside'):
        make_grid('similarity', thresholds=[1.0])
    data = TuningData(torch.zeros(5, 2), torch.zeros(5, 1, 1, dtype=torch.uint8),
                      np.arange(6))
    with pytest.raises(ValueError, match='grid is empty'):
        cross_validate(data, [], progress=False)


def test_select_best_picks_the_arg_max_row():
    points = [GridPoint('similarity', 2, None, 0.5), GridPoint('similarity', 4, None, 0.5),
              GridPoint('similarity', 2, None, 0.2)]
    nan = float('nan')
    # (G=3, F=2, C=3); class a: row 1 (mean 0.6); class b: rows 0 and 2 tie at 0.5 -> row 0;
    # class c: NaN fold ignored, row 2 (mean 0.9 from one fold, std 0); all-NaN would keep row 0
    ious = np.array([[[0.2, 0.4, nan], [0.6, 0.6, 0.1]],
                     [[0.5, 0.3, 0.5], [0.7, 0.5, 0.5]],
                     [[0.1, 0.5, 0.9], [0.1, 0.5, nan]]])
    best = select_best(points, ious, ['a', 'b', 'c'])
    assert [r['index'] for r in best] == [1, 0, 2]
    assert best[0]['k'] == 4 and best[0]['threshold'] == 0.5
    assert best[0]['mean'] == pytest.approx(0.6)
    assert best[0]['std'] == pytest.approx(math.sqrt(0.02))  # sample std of 0.5, 0.7
    assert best[0]['mean_minus_std'] == pytest.approx(0.6 - math.sqrt(0.02))
    assert best[2]['mean'] == pytest.approx(0.9) and best[2]['std'] == 0.0
    assert best[2]['fold_ious'][0] == pytest.approx(0.9) and math.isnan(best[2]['fold_ious'][1])
    all_nan = select_best(points, np.full((3, 2, 1), nan), ['d'])[0]
    assert all_nan['index'] == 0 and math.isnan(all_nan['mean'])
    mean, std = fold_statistics(ious)
    assert mean.shape == std.shape == (3, 3)


def _brute_iou(mem_keys, mem_vals, q_keys, q_labels, point):
    """IoU per class: cosine top-k by (-sim, id), weights by hand, strict threshold."""
    sims = np.minimum(q_keys @ mem_keys.T, 1.0)
    units, classes = q_labels.shape[1:]
    scores = np.zeros((q_keys.shape[0], units, classes))
    for m in range(q_keys.shape[0]):
        order = np.lexsort((np.arange(sims.shape[1]), -sims[m]))[:point.k]
        s = sims[m, order]
        if point.aggregation == 'attention':
            w = np.exp((s - s.max()) / point.beta)
        else:
            w = 1.0 / (1.0 - s + 1e-8)
        w = w / w.sum()
        scores[m] = np.einsum('k,kuc->uc', w, mem_vals[order])
    valid, gt = q_labels != IGNORE, q_labels == 1
    pred = (scores > point.threshold) & valid
    inter = (pred & gt).sum((0, 1))
    union = (pred | gt).sum((0, 1))
    return inter, union, scores


def test_evaluate_fold_and_cross_validate_equal_brute_force():
    rng = np.random.default_rng(0)
    n_img, tokens, units, classes = 6, 3, 4, 2
    keys = rng.normal(size=(n_img * tokens, 8)).astype(np.float32)
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    keys[3] = keys[0]  # duplicate keys: ties broken by insertion order
    labels = (rng.random((n_img * tokens, units, classes)) < 0.4).astype(np.uint8)
    labels[-2:, :2] = IGNORE  # ignored (padding) pixels of the last image
    data = TuningData(torch.from_numpy(keys), torch.from_numpy(labels),
                      np.arange(0, n_img * tokens + 1, tokens))
    points = (make_grid('attention', ks=[1, 3, 5], betas=[0.5, 0.05], thresholds=[0.5, 0.2]) +
              make_grid('similarity', ks=[2, 4, 99], thresholds=[0.3]))
    result = cross_validate(data, points, n_splits=3, memory_options=OPTS, chunk=4,
                            progress=False)
    assert result.ious.shape == (len(points), 3, classes)
    assert any('k=[99] skipped' in n for n in result.notes)
    for f, (train, test) in enumerate(result.folds):
        mrows, qrows = data.rows(train).numpy(), data.rows(test).numpy()
        mem_vals = (labels[mrows] == 1).astype(np.float64)
        for g, point in enumerate(points):
            if point.k == 99:
                assert np.isnan(result.ious[g, f]).all()
                continue
            inter, union, scores = _brute_iou(keys[mrows].astype(np.float64), mem_vals,
                                              keys[qrows].astype(np.float64), labels[qrows],
                                              point)
            # no score within rounding of a threshold, so the float32 path must agree exactly
            assert np.abs(scores - point.threshold).min() > 1e-5
            expected = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
            np.testing.assert_allclose(result.ious[g, f], expected, rtol=0, atol=1e-12)
    # evaluate_fold directly: intersections / unions, one query chunk vs many
    from aoissl_mm.models.retrieval.tuning import _fold_memory
    train, test = result.folds[0]
    memory = _fold_memory(data, train, OPTS, None)
    fit = [p for p in points if p.k != 99]
    i1, u1 = evaluate_fold(memory, data.keys[data.rows(test)], data.labels[data.rows(test)], fit,
                           chunk=1)
    i2, u2 = evaluate_fold(memory, data.keys[data.rows(test)], data.labels[data.rows(test)], fit,
                           chunk=1000)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(u1, u2)
