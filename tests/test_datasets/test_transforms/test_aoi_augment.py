"""Tests for AOIAugment (and a pipeline through the crop and packing).

The main fixture is an image whose multi-label mask is a known function of its
pixels: channel 0 = 40 + 200 * a and channel 1 = 40 + 200 * b (times 257 for
uint16), with a, b binary blob maps, and mask channels drawn from
[a, b, a & b, a | b, a & ~b]. Padding / zero fill gives 0 in both, which the
function maps to an all-zero mask, so the relation must survive every op.
"""
from unittest import mock

import cv2
import numpy as np
import pytest
from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS

from aoissl_mm.datasets.transforms import (
    AOIAugment,
    PackMultiLabelSegInputs,
    PadCenterCrop,
    PositiveAnchoredRandomCrop,
)
from aoissl_mm.datasets.transforms import functional as F
from aoissl_mm.datasets.transforms.aoi_augment import AOI_AUGMENT_OPS

H, W = 40, 48
PAD_TO = 56
GEOMETRIC_INTERP = ('scale', 'rotate', 'shear')
EXACT_GEOMETRIC = ('vflip', 'hflip', 'rot90')
PHOTOMETRIC = ('blur', 'contrast', 'noise', 'gamma')
# the zone where channel 1 is 0 (and a class-0 blob lies): the Pillow "LA" trap
ZONE = (slice(13, 28), slice(15, 34))


def _disc(cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (yy - cy)**2 + (xx - cx)**2 <= r * r


def _mask_from_ab(a: np.ndarray, b: np.ndarray, num_classes: int) -> np.ndarray:
    chans = [a, b, a & b, a | b, a & ~b][:num_classes]
    return np.stack(chans, axis=-1).astype(np.uint8)


def make_sample(dtype=np.uint8, num_classes: int = 2):
    a = _disc(20, 24, 5) | _disc(8, 9, 6) | _disc(31, 40, 6)
    b = np.zeros((H, W), bool)
    b[3:15, 4:22] = True      # overlaps the disc at (8, 9): a & b non-empty
    b[26:38, 32:46] = True    # overlaps the disc at (31, 40)
    b[ZONE] = False
    scale = 257 if dtype == np.uint16 else 1
    img = np.stack([40 + 200 * a, 40 + 200 * b], axis=-1).astype(np.int64) * scale
    img[..., 1][ZONE] = 0
    results = dict(img=img.astype(dtype), gt_seg_map=_mask_from_ab(a, b, num_classes),
                   seg_fields=['gt_seg_map'], img_shape=(H, W))
    return results, scale


def mask_from_img(img: np.ndarray, scale: int, num_classes: int) -> np.ndarray:
    """The independent reference: the mask implied by the image pixels."""
    a = img[..., 0].astype(np.int64) > 140 * scale
    b = img[..., 1].astype(np.int64) > 140 * scale
    return _mask_from_ab(a, b, num_classes)


def boundary_band(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` px of a class boundary in any channel."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    band = np.zeros(mask.shape[:2], bool)
    for c in range(mask.shape[2]):
        m = np.ascontiguousarray(mask[..., c])
        band |= cv2.dilate(m, kernel) != cv2.erode(m, kernel)
    return band


def check_consistent(res: dict, scale: int, num_classes: int, band_px: int) -> None:
    mask = res['gt_seg_map']
    assert mask.dtype == np.uint8 and mask.ndim == 3 and mask.shape[2] == num_classes
    assert set(np.unique(mask)) <= {0, 1}
    assert mask.shape[:2] == res['img'].shape[:2] == tuple(res['img_shape'])
    wrong = (mask_from_img(res['img'], scale, num_classes) != mask).any(axis=2)
    if band_px == 0:
        assert not wrong.any()
    else:
        band = boundary_band(mask, band_px)
        assert not (wrong & ~band).any(), f'{int((wrong & ~band).sum())} px off the boundary band'
        assert band.mean() < 0.6  # the band must not excuse (almost) everything


def _padded_reference(dtype, num_classes):
    res, _ = make_sample(dtype, num_classes)
    img, _ = F.pad_center(res['img'], (PAD_TO, PAD_TO))
    mask, _ = F.pad_center(res['gt_seg_map'], (PAD_TO, PAD_TO))
    return img, mask


# ---------------------------------------------------------------------------- AOIAugment


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
@pytest.mark.parametrize('op', AOI_AUGMENT_OPS)
def test_single_op_keeps_mask_a_function_of_pixels(op, dtype):
    num_classes = 5 if op in ('rotate', 'rot90', 'blur') else 2
    t = AOIAugment(n=1, pad_to=PAD_TO, transforms=(op, ))
    ref_img, ref_mask = _padded_reference(dtype, num_classes)
    for seed in range(4):
        np.random.seed(seed)
        res, scale = make_sample(dtype, num_classes)
        res = t(res)
        assert res['aoi_aug_ops'] == [op]
        assert res['img'].dtype == dtype and res['img'].shape[2] == 2
        band = 2 if op in GEOMETRIC_INTERP + ('blur', ) else 0
        check_consistent(res, scale, num_classes, band)
        if op in PHOTOMETRIC:
            assert np.array_equal(res['gt_seg_map'], ref_mask)  # masks untouched
            assert res['img'].shape == ref_img.shape
        if op in EXACT_GEOMETRIC + PHOTOMETRIC[:1] + GEOMETRIC_INTERP:
            # Pillow's LA mode would zero channel 0 wherever channel 1 is 0
            ch0, ch1 = res['img'][..., 0], res['img'][..., 1]
            assert ((ch1 == 0) & (ch0 > 140 * scale)).any()


def test_exact_geometry_hand_computed():
    img = np.array([[[1, 11], [2, 12], [3, 13]], [[4, 14], [5, 15], [6, 16]]], np.uint8)
    mask = np.array([[[1], [0], [0]], [[0], [1], [1]]], np.uint8)
    res = AOIAugment(n=1, pad_to=None, transforms=('hflip', ))(
        dict(img=img.copy(), gt_seg_map=mask.copy(), seg_fields=['gt_seg_map']))
    assert res['img'][..., 0].tolist() == [[3, 2, 1], [6, 5, 4]]
    assert res['img'][..., 1].tolist() == [[13, 12, 11], [16, 15, 14]]
    assert res['gt_seg_map'].shape == (2, 3, 1)
    assert res['gt_seg_map'][..., 0].tolist() == [[0, 0, 1], [1, 1, 0]]
    res = AOIAugment(n=1, pad_to=None, transforms=('vflip', ))(
        dict(img=img.copy(), gt_seg_map=mask.copy(), seg_fields=['gt_seg_map']))
    assert res['img'][..., 0].tolist() == [[4, 5, 6], [1, 2, 3]]
    assert res['gt_seg_map'][..., 0].tolist() == [[0, 1, 1], [1, 0, 0]]
    # rot90: the result is one of the four rotations, with the mask rotated alike
    rots_img = {k: np.rot90(img, k).tolist() for k in range(4)}
    seen = set()
    for seed in range(12):
        np.random.seed(seed)
        res = AOIAugment(n=1, pad_to=None, transforms=('rot90', ))(
            dict(img=img.copy(), gt_seg_map=mask.copy(), seg_fields=['gt_seg_map']))
        k = [k for k, v in rots_img.items() if v == res['img'].tolist()]
        assert len(k) == 1
        assert res['gt_seg_map'].tolist() == np.rot90(mask, k[0]).tolist()
        assert tuple(res['img_shape']) == res['img'].shape[:2]
        seen.add(k[0])
    assert seen == {0, 1, 2, 3}


def test_padding_is_centred_and_updates_shape():
    img = np.full((3, 6, 2), 7, np.uint8)
    res = AOIAugment(n=0, pad_to=(6, 8))(dict(img=img))
    expected = np.zeros((6, 8), np.uint8)
    expected[1:4, 1:7] = 7
    assert np.array_equal(res['img'][..., 0], expected)
    assert np.array_equal(res['img'][..., 1], expected)
    assert res['img_shape'] == (6, 8) and res['aoi_aug_ops'] == []


def test_rotate_quarter_turn_matches_rot90():
    """A 90 degree affine rotation of a square image is an exact rot90 (centre fixed)."""
    res, _ = make_sample(np.uint8, 2)
    t = AOIAugment(n=1, pad_to=PAD_TO, transforms=('rotate', ), rotate_range=(90, 90))
    out = t(res)
    img, mask = _padded_reference(np.uint8, 2)
    assert np.array_equal(out['img'], np.rot90(img, 1))
    assert np.array_equal(out['gt_seg_map'], np.rot90(mask, 1))


def test_affine_nearest_for_masks_bilinear_for_image():
    img = np.zeros((9, 9, 2), np.uint8)
    img[:, 4:] = 200
    mask = np.zeros((9, 9, 1), np.uint8)
    mask[:, 4:] = 1
    # x scale 2 about x = 4: source x = 4 + (x - 4) / 2; x = 3 -> 3.5, x = 2 -> 3, x = 6 -> 5
    t = AOIAugment(n=1, pad_to=None, transforms=('scale', ), scale_range=(2.0, 2.0))
    out = t(dict(img=img, gt_seg_map=mask, seg_fields=['gt_seg_map']))
    assert out['img'][4, 3, 0] == 100  # bilinear: halfway between 0 and 200
    assert out['img'][4, 2, 0] == 0 and out['img'][4, 6, 0] == 200
    assert out['gt_seg_map'][4, 2, 0] == 0 and out['gt_seg_map'][4, 6, 0] == 1
    assert set(np.unique(out['gt_seg_map'])) <= {0, 1}


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
def test_full_policy_keeps_mask_consistent(dtype):
    t = SEG_TRANSFORMS.build(dict(type='AOIAugment', pad_to=PAD_TO))
    counts = {}
    for seed in range(15):
        np.random.seed(seed)
        res, scale = make_sample(dtype, 4)
        res = t(res)
        assert len(res['aoi_aug_ops']) == 3
        for op in res['aoi_aug_ops']:
            counts[op] = counts.get(op, 0) + 1
        assert res['img'].dtype == dtype and res['img'].shape[2] == 2
        interp = sum(op in GEOMETRIC_INTERP + ('blur', ) for op in res['aoi_aug_ops'])
        check_consistent(res, scale, 4, 2 * interp)
    assert set(counts) <= set(AOI_AUGMENT_OPS) and len(counts) >= 6


def test_sampling_is_with_replacement_and_reproducible():
    t = AOIAugment(n=3, pad_to=None, transforms=('hflip', 'vflip'))
    img = np.ones((4, 4, 2), np.uint8)
    runs = []
    for seed in range(10):
        np.random.seed(seed)
        runs.append(tuple(t(dict(img=img.copy()))['aoi_aug_ops']))
    # 3 draws from 2 names always repeat one: only possible with replacement
    assert all(len(set(r)) < 3 for r in runs)
    np.random.seed(3)
    assert tuple(t(dict(img=img.copy()))['aoi_aug_ops']) == runs[3]


def test_photometric_hand_computed():
    img = np.array([[[100, 200], [0, 51]]], np.uint8)
    out = AOIAugment(n=1, pad_to=None, transforms=('contrast', ),
                     contrast_range=(1.5, 1.5))(dict(img=img.copy()))
    assert out['img'].tolist() == [[[150, 255], [0, 76]]]  # 76.5 rounds to even 76
    out = AOIAugment(n=1, pad_to=None, transforms=('gamma', ),
                     gamma_range=(2.0, 2.0))(dict(img=img.copy()))
    # 255 * (v / 255) ** 2: 100 -> 39.2, 200 -> 156.9, 51 -> 10.2
    assert out['img'].tolist() == [[[39, 157], [0, 10]]]
    img16 = np.array([[[65535, 32768]]], np.uint16)
    out = AOIAugment(n=1, pad_to=None, transforms=('gamma', ),
                     gamma_range=(2.0, 2.0))(dict(img=img16))
    assert out['img'].dtype == np.uint16
    assert out['img'].tolist() == [[[65535, 16384]]]  # 32768 ** 2 / 65535 = 16384.25
    # blur with sigma 0: OpenCV's fixed 3-tap kernel [1/4, 1/2, 1/4] per axis
    imp = np.zeros((5, 5, 2), np.uint8)
    imp[2, 2] = (160, 80)
    out = AOIAugment(n=1, pad_to=None, transforms=('blur', ), blur_sigma=(0, 0),
                     blur_kernel_sizes=(3, ), blur_kernel_probs=(1.0, ))(dict(img=imp))
    assert out['img'][1:4, 1:4, 0].tolist() == [[10, 20, 10], [20, 40, 20], [10, 20, 10]]
    assert out['img'][1:4, 1:4, 1].tolist() == [[5, 10, 5], [10, 20, 10], [5, 10, 5]]
    assert out['img'][0].sum() == 0


@pytest.mark.parametrize('dtype,scale', [(np.uint8, 1), (np.uint16, 257)])
def test_noise_variance_and_per_channel(dtype, scale):
    np.random.seed(0)
    img = np.full((128, 128, 2), 128 * scale, dtype)
    out = AOIAugment(n=1, pad_to=None, transforms=('noise', ),
                     noise_var_range=(9.0, 9.0))(dict(img=img))['img']
    assert out.dtype == dtype
    diff = out.astype(np.float64) - 128 * scale
    assert abs(diff.mean()) < 0.1 * scale
    assert 2.8 * scale < diff.std() < 3.2 * scale  # sqrt(9) grey levels
    corr = np.corrcoef(diff[..., 0].ravel(), diff[..., 1].ravel())[0, 1]
    assert abs(corr) < 0.05  # independent per channel


def test_noise_clips_instead_of_wrapping():
    np.random.seed(0)
    img = np.zeros((32, 32, 2), np.uint8)
    img[:16] = 255
    out = AOIAugment(n=1, pad_to=None, transforms=('noise', ),
                     noise_var_range=(12.75, 12.75))(dict(img=img))['img']
    assert out[:16].min() > 200 and out[16:].max() < 50


@pytest.mark.parametrize('channels', [1, 6])
@pytest.mark.parametrize('op', ['rotate', 'blur', 'noise', 'shear', 'contrast'])
def test_any_channel_count(op, channels):
    np.random.seed(1)
    img = np.random.randint(0, 255, (20, 24, channels)).astype(np.uint8)
    mask = (np.random.rand(20, 24, channels) > 0.5).astype(np.uint8)
    out = AOIAugment(n=1, pad_to=None, transforms=(op, ))(
        dict(img=img, gt_seg_map=mask, seg_fields=['gt_seg_map']))
    assert out['img'].shape == (20, 24, channels) and out['img'].dtype == np.uint8
    assert out['gt_seg_map'].shape == (20, 24, channels)
    assert set(np.unique(out['gt_seg_map'])) <= {0, 1}


@pytest.mark.parametrize('op,expected', [
    ('blur', [(0.0, 0.75)]), ('contrast', [(0.8, 1.2)]), ('noise', [(0.05, 12.75)]),
    ('scale', [(0.5, 2.0), (0.5, 2.0)]), ('rotate', [(-45.0, 45.0)]),
    ('shear', [(-8.0, 8.0), (-8.0, 8.0)]), ('gamma', [(0.8, 1.2)])])
def test_default_ranges_follow_spec(op, expected):
    """Spec §1.5 values; scale and shear draw x and y independently."""
    img = np.full((8, 8, 2), 100, np.uint8)
    with mock.patch('numpy.random.uniform', wraps=np.random.uniform) as uni, \
            mock.patch('numpy.random.choice', wraps=np.random.choice) as choice:
        AOIAugment(n=1, pad_to=None, transforms=(op, ))(dict(img=img))
    assert [tuple(c.args) for c in uni.call_args_list] == expected
    if op == 'blur':
        assert choice.call_count == 1
        assert tuple(choice.call_args.kwargs['p']) == (0.2, 0.4, 0.4)
        assert AOIAugment().blur_kernel_sizes == (3, 5, 7)


def test_aoi_augment_errors():
    with pytest.raises(ValueError, match=r"unknown name.*'colour'.*valid names.*vflip"):
        AOIAugment(transforms=('rotate', 'colour'))
    with pytest.raises(ValueError, match='scale_range'):
        AOIAugment(scale_range=(2.0, 0.5))
    with pytest.raises(ValueError, match='scale_range'):
        AOIAugment(scale_range=(0.0, 2.0))
    with pytest.raises(ValueError, match='blur_kernel_sizes'):
        AOIAugment(blur_kernel_sizes=(3, 4), blur_kernel_probs=(0.5, 0.5))
    with pytest.raises(ValueError, match='blur_kernel_probs'):
        AOIAugment(blur_kernel_probs=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="'n'"):
        AOIAugment(n=-1)
    t = AOIAugment(pad_to=None)
    with pytest.raises(KeyError, match='img'):
        t(dict())
    with pytest.raises(ValueError, match=r"gt_seg_map.*\(4, 4\).*\(4, 5\)"):
        t(dict(img=np.zeros((4, 5, 2), np.uint8), gt_seg_map=np.zeros((4, 4, 2), np.uint8),
               seg_fields=['gt_seg_map']))
    with pytest.raises(TypeError, match='uint8 or uint16'):
        t(dict(img=np.zeros((4, 5, 2), np.float32)))
    with pytest.raises(KeyError, match='seg_fields'):
        t(dict(img=np.zeros((4, 5, 2), np.uint8), seg_fields=['gt_seg_map']))


# ------------------------------------------------------------ whole pipeline


def test_pipeline_pack_after_crop():
    np.random.seed(2)
    res, _ = make_sample(np.uint8, 4)
    res = AOIAugment(pad_to=PAD_TO)(res)
    res = PositiveAnchoredRandomCrop(crop_size=32)(res)
    packed = PackMultiLabelSegInputs()(res)
    assert tuple(packed['inputs'].shape) == (2, 32, 32)
    assert tuple(packed['data_samples'].gt_sem_seg.data.shape) == (4, 32, 32)


def test_reprs():
    assert 'n=3' in repr(AOIAugment())
    assert 'pos_prob=0.8' in repr(PositiveAnchoredRandomCrop())
    assert 'size=(512, 512)' in repr(PadCenterCrop())
