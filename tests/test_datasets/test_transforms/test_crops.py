"""Tests for PositiveAnchoredRandomCrop and PadCenterCrop: anchoring, black-patch
re-sampling, exact crops of every seg field, padding of small images."""
from unittest import mock

import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS

from aoissl_mm.datasets.transforms import PositiveAnchoredRandomCrop

# ------------------------------------------------------------ PositiveAnchoredRandomCrop


def _tiny_blob_sample():
    img = np.full((64, 64, 2), 50, np.uint8)
    mask = np.zeros((64, 64, 4), np.uint8)
    mask[50:52, 5:7, 2] = 1  # one tiny positive blob, class 2 only
    return dict(img=img, gt_seg_map=mask, seg_fields=['gt_seg_map'])


def test_positive_crop_contains_positive_pixel(pretrain_scope):
    t = PRETRAIN_TRANSFORMS.build(
        dict(type='PositiveAnchoredRandomCrop', crop_size=16, pos_prob=1.0))
    np.random.seed(0)
    rows = set()
    for _ in range(100):
        src = _tiny_blob_sample()
        res = t(src)
        y0, y1, x0, x1 = res['crop_bbox']
        assert (y1 - y0, x1 - x0) == (16, 16) and res['img_shape'] == (16, 16)
        assert res['gt_seg_map'].sum() > 0
        # exact crop of image and mask
        full = _tiny_blob_sample()
        assert np.array_equal(res['gt_seg_map'], full['gt_seg_map'][y0:y1, x0:x1])
        rows.add(y0)
    assert len(rows) > 5  # the pixel is placed at varying positions in the window
    # uniform crops rarely contain it: the anchoring is what makes the difference
    t0 = PositiveAnchoredRandomCrop(crop_size=16, pos_prob=0.0)
    hits = sum(t0(_tiny_blob_sample())['gt_seg_map'].sum() > 0 for _ in range(100))
    assert hits < 30


def test_crop_is_exact_and_moves_all_seg_fields(seg_scope):
    t = SEG_TRANSFORMS.build(dict(type='PositiveAnchoredRandomCrop', crop_size=(8, 10),
                                  pos_prob=0.5))
    img = np.arange(20 * 30 * 2, dtype=np.uint16).reshape(20, 30, 2) + 1
    mask = (np.arange(20 * 30 * 3).reshape(20, 30, 3) % 7 == 0).astype(np.uint8)
    extra = (np.arange(20 * 30).reshape(20, 30) % 3 == 0).astype(np.uint8)
    np.random.seed(5)
    for _ in range(20):
        res = t(dict(img=img.copy(), gt_seg_map=mask.copy(), extra=extra.copy(),
                     seg_fields=['gt_seg_map', 'extra']))
        y0, y1, x0, x1 = res['crop_bbox']
        assert 0 <= y0 and y1 <= 20 and 0 <= x0 and x1 <= 30
        assert np.array_equal(res['img'], img[y0:y1, x0:x1])
        assert np.array_equal(res['gt_seg_map'], mask[y0:y1, x0:x1])
        assert np.array_equal(res['extra'], extra[y0:y1, x0:x1])
        assert res['img'].dtype == np.uint16


def test_crop_pads_small_images_first():
    img = np.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11, 12]]], np.uint8)
    mask = np.array([[[1], [0]], [[0], [1]], [[1], [1]]], np.uint8)
    res = PositiveAnchoredRandomCrop(crop_size=(5, 4), pos_prob=1.0)(
        dict(img=img, gt_seg_map=mask, seg_fields=['gt_seg_map']))
    # pad 3x2 -> 5x4: top 1, left 1; the window is the whole padded image
    assert res['crop_bbox'] == (0, 5, 0, 4)
    assert res['img'][..., 0].tolist() == [[0, 0, 0, 0], [0, 1, 3, 0], [0, 5, 7, 0],
                                           [0, 9, 11, 0], [0, 0, 0, 0]]
    assert res['gt_seg_map'][..., 0].tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                                  [0, 1, 1, 0], [0, 0, 0, 0]]


def test_crop_without_masks_for_pretraining():
    np.random.seed(0)
    img = np.random.randint(1, 255, (40, 50, 2)).astype(np.uint8)
    res = PositiveAnchoredRandomCrop(crop_size=(16, 16))(dict(img=img.copy()))
    y0, y1, x0, x1 = res['crop_bbox']
    assert np.array_equal(res['img'], img[y0:y1, x0:x1]) and res['img_shape'] == (16, 16)


def _strip_image():
    img = np.zeros((64, 64, 2), np.uint8)
    img[:, 10:12, 0] = 90  # 128 of 4096 px non-zero: 96.9 % black
    img[:, :, 1] = 30      # buffer1 is never black: only channel 0 counts
    return img


def _is_black(crop: np.ndarray) -> bool:
    return (crop[..., 0] == 0).mean() > 0.95


def test_black_filter_avoids_black_crops():
    np.random.seed(0)
    off = PositiveAnchoredRandomCrop(crop_size=32, black_thr=1.0)
    on = PositiveAnchoredRandomCrop(crop_size=32, black_thr=0.95, max_tries=10)
    n_off = sum(not _is_black(off(dict(img=_strip_image()))['img']) for _ in range(100))
    n_on = sum(not _is_black(on(dict(img=_strip_image()))['img']) for _ in range(100))
    assert n_off < 50   # about 1/3 of uniform crops contain the strip
    assert n_on >= 95   # 1 - (2/3)^11 = 98.8 % with the filter


@pytest.mark.parametrize('max_tries', [0, 3])
def test_black_filter_retry_cap(max_tries):
    t = PositiveAnchoredRandomCrop(crop_size=8, black_thr=0.95, max_tries=max_tries)
    with mock.patch.object(t, '_sample_bbox', wraps=t._sample_bbox) as spy:
        res = t(dict(img=np.zeros((32, 32, 2), np.uint8)))  # every crop is black
    assert spy.call_count == max_tries + 1
    assert res['img'].shape == (8, 8, 2)  # the last draw is accepted
    with mock.patch.object(t, '_sample_bbox', wraps=t._sample_bbox) as spy:
        t(dict(img=np.ones((32, 32, 2), np.uint8)))
    assert spy.call_count == 1


def test_crop_errors():
    with pytest.raises(ValueError, match='pos_prob'):
        PositiveAnchoredRandomCrop(pos_prob=1.5)
    with pytest.raises(ValueError, match='black_thr'):
        PositiveAnchoredRandomCrop(black_thr=-0.1)
    with pytest.raises(ValueError, match='max_tries'):
        PositiveAnchoredRandomCrop(max_tries=-1)
    with pytest.raises(ValueError, match='crop_size'):
        PositiveAnchoredRandomCrop(crop_size=(0, 4))
    with pytest.raises(ValueError, match='gt_seg_map'):
        PositiveAnchoredRandomCrop(crop_size=4)(
            dict(img=np.ones((8, 8, 2), np.uint8), gt_seg_map=np.ones((8, 7, 4), np.uint8),
                 seg_fields=['gt_seg_map']))


# ------------------------------------------------------------------------- PadCenterCrop


def test_pad_center_crop_smaller_image(pretrain_scope):
    t = PRETRAIN_TRANSFORMS.build(dict(type='PadCenterCrop', size=(4, 4)))
    img = np.stack([np.array([[1, 2, 3], [4, 5, 6]]), np.array([[11, 12, 13], [14, 15, 16]])],
                   axis=-1).astype(np.uint8)
    mask = np.array([[[1], [0], [1]], [[0], [1], [0]]], np.uint8)
    res = t(dict(img=img, gt_seg_map=mask, seg_fields=['gt_seg_map']))
    assert res['img'][..., 0].tolist() == [[0, 0, 0, 0], [1, 2, 3, 0], [4, 5, 6, 0], [0, 0, 0, 0]]
    assert res['img'][..., 1].tolist() == [[0, 0, 0, 0], [11, 12, 13, 0], [14, 15, 16, 0],
                                           [0, 0, 0, 0]]
    assert res['gt_seg_map'].shape == (4, 4, 1)
    assert res['gt_seg_map'][..., 0].tolist() == [[0, 0, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0],
                                                  [0, 0, 0, 0]]
    assert res['img_shape'] == (4, 4)


def test_pad_center_crop_larger_and_mixed(seg_scope):
    t = SEG_TRANSFORMS.build(dict(type='PadCenterCrop', size=(4, 4)))
    big = np.arange(30, dtype=np.uint16).reshape(6, 5)
    img = np.stack([big, big + 100], axis=-1)
    res = t(dict(img=img, gt_seg_map=(img[..., :1] % 2).astype(np.uint8),
                 seg_fields=['gt_seg_map']))
    assert res['img'][..., 0].tolist() == [[5, 6, 7, 8], [10, 11, 12, 13], [15, 16, 17, 18],
                                           [20, 21, 22, 23]]
    assert res['img'].dtype == np.uint16
    assert res['gt_seg_map'][..., 0].tolist() == [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0],
                                                  [0, 1, 0, 1]]
    mixed = (np.arange(18).reshape(3, 6) + 1).astype(np.uint8)
    res = t(dict(img=np.stack([mixed, mixed], axis=-1)))
    assert res['img'][..., 0].tolist() == [[2, 3, 4, 5], [8, 9, 10, 11], [14, 15, 16, 17],
                                           [0, 0, 0, 0]]
    assert res['crop_bbox'] == (0, 4, 1, 5)


def test_class_balanced_anchor_reaches_a_rare_class():
    """Union anchoring almost never lands on a 4-pixel class; class-balanced half the time."""
    from aoissl_mm.datasets.transforms import PositiveAnchoredRandomCrop
    h = w = 200
    mask = np.zeros((h, w, 2), np.uint8)
    mask[:, :100, 0] = 1                # a big class on the left half
    mask[190:192, 190:192, 1] = 1       # 4 pixels of a rare class in the far corner
    img = np.full((h, w, 2), 50, np.uint8)

    def share_with_rare(balanced):
        np.random.seed(0)
        crop = PositiveAnchoredRandomCrop(crop_size=(20, 20), pos_prob=1.0,
                                          class_balanced=balanced)
        hits = 0
        for _ in range(200):
            out = crop.transform(dict(img=img.copy(), gt_seg_map=mask.copy(),
                                      seg_fields=['gt_seg_map']))
            hits += int(out['gt_seg_map'][..., 1].any())
        return hits / 200

    # union rule: P(anchor on the rare class) = 4 / 20004, and a 20 px window around a
    # left-half pixel never reaches the corner
    assert share_with_rare(False) < 0.02
    # class-balanced: the rare class is chosen with probability 1/2
    assert 0.38 < share_with_rare(True) < 0.62
