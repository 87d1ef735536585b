"""AOIMultiCrop: crop counts/sizes, windows, black re-sampling, masks per global view, packing."""
import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate

from aoissl_mm.datasets.transforms import AOIMultiCrop
from aoissl_mm.datasets.transforms import aoi_multi_crop as amc
from aoissl_mm.datasets.transforms.block_mask import block_mask, default_min_block


def _img(h=300, w=400, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 200, size=(h, w, 2)).astype(dtype)


def test_counts_sizes_dtype_and_windows():
    np.random.seed(0)
    t = AOIMultiCrop(global_size=64, local_size=32, num_local=3)
    img = _img()
    for _ in range(20):
        out = t.transform(dict(img=img.copy()))
        crops = out['img']
        assert len(crops) == 2 + 3
        assert [c.shape for c in crops] == [(64, 64, 2)] * 2 + [(32, 32, 2)] * 3
        assert all(c.dtype == np.uint8 for c in crops)
        assert 'mask' not in out  # DINO: no masks without mask_patch_size
        for i, (y0, y1, x0, x1) in enumerate(out['crop_bboxes']):
            assert 0 <= y0 < y1 <= 300 and 0 <= x0 < x1 <= 400
            share = (y1 - y0) * (x1 - x0) / (300 * 400)
            lo, hi = (0.4, 1.0) if i < 2 else (0.05, 0.4)
            # rounding of the window sides moves the share by a few per cent at most
            assert lo * 0.97 <= share <= hi * 1.03, (i, share)
            aspect = (x1 - x0) / (y1 - y0)
            assert 3 / 4 * 0.95 <= aspect <= 4 / 3 * 1.05, (i, aspect)
    u16 = AOIMultiCrop(global_size=32, local_size=16, num_local=1).transform(
        dict(img=_img(dtype=np.uint16) * 300))
    assert all(c.dtype == np.uint16 for c in u16['img'])


def test_no_pillow_two_channel_values_survive():
    # Pillow treats H x W x 2 as 'LA' and premultiplies on resize (buffer0 zeroed where
    # buffer1 is 0); cv2 keeps both buffers independent
    img = np.zeros((120, 160, 2), np.uint8)
    img[:, :, 0] = 150
    out = AOIMultiCrop(global_size=48, local_size=16, num_local=2, augment=None).transform(
        dict(img=img))
    for c in out['img']:
        assert (c[:, :, 0] == 150).all() and (c[:, :, 1] == 0).all()


@pytest.mark.parametrize('num_local', [0, 13, 2.5, True, -1])
def test_local_count_validation(num_local):
    with pytest.raises(ValueError, match='num_local'):
        AOIMultiCrop(num_local=num_local)


@pytest.mark.parametrize('num_local', [1, 12])
def test_local_count_bounds_accepted(num_local):
    out = AOIMultiCrop(global_size=32, local_size=16, num_local=num_local,
                       augment=None).transform(dict(img=_img(64, 64)))
    assert len(out['img']) == 2 + num_local


@pytest.mark.parametrize('kwargs,msg', [
    (dict(global_size=100, mask_patch_size=16), 'mask grid'),
    (dict(global_size=8, local_size=8, mask_patch_size=16), 'mask grid'),
    (dict(local_size=40, mask_patch_size=32), 'mask grid'),
    (dict(mask_ratio=(0.0, 0.5)), 'mask_ratio'),
    (dict(mask_ratio=(0.1, 1.0)), 'mask_ratio'),
    (dict(mask_prob=1.5), 'mask_prob'),
    (dict(global_scale=(0.4, 1.5)), 'global_scale'),
    (dict(black_thr=2.0), 'black_thr'),
    (dict(augment=dict(n=3, pad_to=512)), 'pad_to'),
    (dict(second_global_exclude=('sharpen', )), 'second_global_exclude'),
    (dict(interpolation='lanczos'), 'interpolation'),
])
def test_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        AOIMultiCrop(**kwargs)


def test_second_global_crop_policy_excludes_contrast_and_gamma():
    t = AOIMultiCrop()
    assert set(t._aug.transforms) == set(amc.AOI_AUGMENT_OPS)
    assert set(t._aug_second.transforms) == set(amc.AOI_AUGMENT_OPS) - {'contrast', 'gamma'}
    assert t._aug.pad_to is None and t._aug.n == 3


def _black_share(img, bbox):
    y0, y1, x0, x1 = bbox
    return float((img[y0:y1, x0:x1, 0] == 0).mean())


def test_black_windows_are_resampled():
    img = _img(200, 200)
    img[:, :100, 0] = 0  # left half black in buffer0
    kwargs = dict(global_size=32, local_size=16, num_local=8, augment=None,
                  local_scale=(0.02, 0.05))
    np.random.seed(1)
    filtered = AOIMultiCrop(black_thr=0.95, **kwargs)
    shares = [_black_share(img, b) for _ in range(30)
              for b in filtered.transform(dict(img=img.copy()))['crop_bboxes']]
    assert max(shares) <= 0.95
    # control: without the filter, small local windows do land in the black half
    np.random.seed(1)
    unfiltered = AOIMultiCrop(black_thr=1.0, **kwargs)
    shares = [_black_share(img, b) for _ in range(30)
              for b in unfiltered.transform(dict(img=img.copy()))['crop_bboxes']]
    assert max(shares) > 0.95


def test_black_resampling_gives_up_after_max_tries(monkeypatch):
    img = _img(100, 100)
    img[:, :50, 0] = 0
    black, bright = (0, 40, 0, 40), (0, 40, 60, 100)
    calls = []

    def fake_sampler(seq):
        def sampler(hw, scale, ratio):
            calls.append(1)
            return seq[min(len(calls) - 1, len(seq) - 1)]
        return sampler

    t = AOIMultiCrop(global_size=16, local_size=16, num_local=1, augment=None, max_tries=3)
    # 2 black draws, then a bright one: the bright one is kept after 3 draws
    monkeypatch.setattr(amc, 'sample_resized_crop_bbox', fake_sampler([black, black, bright]))
    t._crop(img, (16, 16), (0.1, 0.2))
    assert len(calls) == 3
    # always black: 1 draw + max_tries re-draws, then the last window is accepted
    calls.clear()
    monkeypatch.setattr(amc, 'sample_resized_crop_bbox', fake_sampler([black]))
    crop, bbox = t._crop(img, (16, 16), (0.1, 0.2))
    assert len(calls) == 1 + 3 and bbox == black and crop.shape == (16, 16, 2)


def test_masks_per_global_view():
    np.random.seed(0)
    t = AOIMultiCrop(global_size=224, local_size=96, num_local=1, augment=None,
                     mask_patch_size=16, mask_prob=1.0)
    out = t.transform(dict(img=_img()))
    assert out['mask'].shape == (2, 14, 14) and out['mask'].dtype == bool
    for _ in range(50):
        masks = t._masks()
        for m in masks:
            # ratio in [0.1, 0.5) of 196 tokens, and the placement never exceeds the target
            assert 1 <= m.sum() <= int(0.5 * 196)
    never = AOIMultiCrop(global_size=64, local_size=32, mask_patch_size=32, mask_prob=0.0)
    assert never._masks().shape == (2, 2, 2) and not never._masks().any()
    # probability 0.5 per view: about half of the views are masked
    half = AOIMultiCrop(global_size=224, local_size=96, mask_patch_size=32)
    np.random.seed(3)
    masked = np.array([half._masks().reshape(2, -1).any(axis=1) for _ in range(400)])
    assert 0.4 < masked.mean() < 0.6
    assert 0.4 < masked[:, 0].mean() < 0.6 and 0.4 < masked[:, 1].mean() < 0.6


def test_block_mask_blocks_and_termination():
    assert default_min_block((14, 14)) == 16 and default_min_block((7, 7)) == 4
    assert default_min_block((2, 2)) == 1
    np.random.seed(0)
    for _ in range(30):
        m = block_mask((14, 14), 40)
        assert 0 < m.sum() <= 40
    assert not block_mask((5, 5), 0).any()
    # a single-row grid has no room for BEiT's blocks (h < grid h): returns, does not hang
    assert not block_mask((1, 8), 4).any()
    # blocks are smaller than the grid (BEiT's h < H, w < W), but placed anywhere several can
    # fill it; whether they do or a round of 10 attempts fails first, the loop ends
    m = block_mask((3, 3), 9, min_block=1)
    assert 0 < m.sum() <= 9


def test_views_and_masks_survive_packing_and_collate():
    from mmpretrain.datasets.transforms import PackInputs
    np.random.seed(0)
    t = AOIMultiCrop(global_size=64, local_size=32, num_local=2, mask_patch_size=16,
                     mask_prob=1.0)
    pack = PackInputs()
    samples = [pack.transform(t.transform(dict(img=_img(seed=s)))) for s in range(3)]
    batch = default_collate(samples)
    views = batch['inputs']
    assert len(views) == 4
    assert [tuple(v.shape) for v in views] == [(3, 2, 64, 64)] * 2 + [(3, 2, 32, 32)] * 2
    masks = torch.stack([ds.mask for ds in batch['data_samples']])
    assert masks.shape == (3, 2, 4, 4) and masks.dtype == torch.bool
    # the packed images are the crops themselves (C, H, W)
    ref = t.transform(dict(img=_img(seed=9)))
    packed = pack.transform(dict(ref))
    assert torch.equal(packed['inputs'][2], torch.from_numpy(ref['img'][2]).permute(2, 0, 1))
    assert torch.equal(packed['data_samples'].mask, torch.from_numpy(ref['mask']))
