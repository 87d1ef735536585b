"""File format, AOIDataset / AOIPretrainDataset, loading and packing, bad input.

Test data is written here with plain cv2 / numpy calls (an independent writer),
not with the package's own writers, except where the writers are under test.
"""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

import aoissl_mm  # noqa: F401
from aoissl_mm.datasets import AOIDataset, AOIPretrainDataset
from aoissl_mm.datasets.io import (
    AOIDataError,
    decode_bitmask,
    encode_bitmask,
    find_buffer_pairs,
    read_buffer_pair,
    read_multilabel_mask,
    write_multilabel_mask,
)
from aoissl_mm.datasets.transforms import (
    LoadAOIImage,
    LoadMultiLabelAnnotations,
    PackMultiLabelSegInputs,
)


def _write_sample(root, split, stem, h=24, w=32, seed=0, label='png', dtype=np.uint8):
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'images', split), exist_ok=True)
    os.makedirs(osp.join(root, 'labels', split), exist_ok=True)
    hi = 255 if dtype == np.uint8 else 65535
    b0 = rng.integers(0, hi, (h, w), endpoint=True).astype(dtype)
    b1 = rng.integers(0, hi, (h, w), endpoint=True).astype(dtype)
    cv2.imwrite(osp.join(root, 'images', split, f'{stem}_buffer0.png'), b0)
    cv2.imwrite(osp.join(root, 'images', split, f'{stem}_buffer1.png'), b1)
    mask = np.zeros((h, w, 4), np.uint8)
    mask[2:10, :, 3] = 1           # epoxy band
    mask[5:8, 4:20, 1] = 1         # ball inside the band
    mask[:, 10:12, 0] = 1          # a vertical wire crossing both
    mask[15:18, 25:29, 2] = 1      # wedge
    if label == 'png':
        bits = (mask[..., 0] | (mask[..., 1] << 1) | (mask[..., 2] << 2) | (mask[..., 3] << 3))
        cv2.imwrite(osp.join(root, 'labels', split, f'{stem}.png'), bits.astype(np.uint8))
    else:
        np.save(osp.join(root, 'labels', split, f'{stem}.npy'), mask)
    return b0, b1, mask


# ---------------------------------------------------------------------------
# bit masks
# ---------------------------------------------------------------------------
def test_bitmask_hand_example():
    mask = np.zeros((1, 3, 4), np.uint8)
    mask[0, 0] = [1, 1, 0, 0]   # wire over ball -> 0b0011 = 3
    mask[0, 1] = [0, 0, 0, 1]   # epoxy -> 8
    mask[0, 2] = [1, 0, 1, 1]   # wire over wedge over epoxy -> 1 + 4 + 8 = 13
    assert encode_bitmask(mask).tolist() == [[3, 8, 13]]
    assert np.array_equal(decode_bitmask(np.array([[3, 8, 13]], np.uint8), 4), mask)


@pytest.mark.parametrize('ext', ['.png', '.npy'])
def test_mask_write_read_round_trip(tmp_path, ext):
    rng = np.random.default_rng(3)
    mask = (rng.random((17, 23, 4)) > 0.5).astype(np.uint8)
    path = str(tmp_path / f'm{ext}')
    write_multilabel_mask(path, mask)
    assert np.array_equal(read_multilabel_mask(path, 4, (17, 23)), mask)
    assert os.listdir(tmp_path) == [f'm{ext}']  # no temporary left behind
    if ext == '.png':  # readable by an independent decoder as the documented bits
        bits = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        assert np.array_equal((bits >> 2) & 1, mask[..., 2])


def test_buffer_pair_reading_16bit_and_3channel(tmp_path):
    b0 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    cv2.imwrite(str(tmp_path / 'x_buffer0.png'), b0)
    rgb = np.dstack([np.full((3, 4), 7, np.uint16), np.zeros((3, 4), np.uint16),
                     np.zeros((3, 4), np.uint16)])
    cv2.imwrite(str(tmp_path / 'x_buffer1.png'), rgb)
    with pytest.warns(UserWarning, match='keeping the first one'):
        img = read_buffer_pair(str(tmp_path / 'x_buffer0.png'), str(tmp_path / 'x_buffer1.png'))
    assert img.dtype == np.uint16 and img.shape == (3, 4, 2)
    assert img[..., 0].max() == 55000  # full 16-bit range kept
    # cv2 stores colour as BGR: the first channel of the file is what we keep
    assert np.all(img[..., 1] == 7)


# ---------------------------------------------------------------------------
# dataset + pipeline
# ---------------------------------------------------------------------------
def test_dataset_loads_independent_layout_with_overlaps(tmp_path, seg_scope):
    root = str(tmp_path)
    b0, b1, mask = _write_sample(root, 'train', 'devA_001', seed=1)
    _write_sample(root, 'train', 'devB_002', seed=2, label='npy')
    ds = AOIDataset(
        data_root=root,
        data_prefix=dict(img_path='images/train', seg_map_path='labels/train'),
        pipeline=[dict(type='LoadAOIImage'), dict(type='LoadMultiLabelAnnotations'),
                  dict(type='PackMultiLabelSegInputs')])
    assert len(ds) == 2
    assert ds.metainfo['classes'] == ('wire', 'ball', 'wedge', 'epoxy')
    assert len(ds.metainfo['palette']) == 4
    for i in range(2):
        out = ds[i]
        inputs, gt = out['inputs'], out['data_samples'].gt_sem_seg.data
        assert inputs.shape == (2, 24, 32) and gt.shape == (4, 24, 32)
        assert torch.equal(gt, torch.from_numpy(mask.transpose(2, 0, 1)))
        # overlaps survive: wire pixels that are also ball and epoxy
        assert int((gt[0] & gt[1] & gt[3]).sum()) == 3 * 2
    first = ds[0]['inputs']
    assert torch.equal(first[0], torch.from_numpy(b0))
    assert torch.equal(first[1], torch.from_numpy(b1))
    assert ds[0]['data_samples'].metainfo['img_path'].endswith('devA_001_buffer0.png')
    # the pair's stem is set once by the dataset and packed for the metric and the hook
    assert ds.get_data_info(0)['stem'] == 'devA_001'
    assert ds[0]['data_samples'].metainfo['stem'] == 'devA_001'
    # without a dataset (a bare path), LoadAOIImage derives it from the buffer0 name
    bare = LoadAOIImage()(dict(img_path=ds.get_data_info(0)['img_path']))
    assert bare['stem'] == 'devA_001'


def test_dataset_num_classes_configurable(tmp_path, seg_scope):
    root = str(tmp_path)
    _write_sample(root, 'val', 's', seed=0, label='npy')
    with pytest.raises(AOIDataError, match='shape'):
        ds = AOIDataset(data_root=root, metainfo=dict(classes=('wire', 'ball')),
                        data_prefix=dict(img_path='images/val', seg_map_path='labels/val'),
                        pipeline=[dict(type='LoadAOIImage'),
                                  dict(type='LoadMultiLabelAnnotations')])
        ds[0]
    # with PNG bit masks, fewer classes than bits set -> clear error
    root2 = str(tmp_path / 'r2')
    _write_sample(root2, 'val', 's', seed=0, label='png')
    ds = AOIDataset(data_root=root2, metainfo=dict(classes=('wire', 'ball')),
                    data_prefix=dict(img_path='images/val', seg_map_path='labels/val'),
                    pipeline=[dict(type='LoadAOIImage'), dict(type='LoadMultiLabelAnnotations')])
    assert ds.metainfo['classes'] == ('wire', 'ball')
    with pytest.raises(AOIDataError, match='bits set beyond the 2 classes'):
        ds[0]


def test_pretrain_dataset_any_depth(tmp_path, pretrain_scope):
    for sub in ('famA', 'famB/deeper'):
        d = tmp_path / 'pretrain' / sub
        d.mkdir(parents=True)
        for k in range(2):
            cv2.imwrite(str(d / f'img{k}_buffer0.png'), np.full((8, 8), 10, np.uint8))
            cv2.imwrite(str(d / f'img{k}_buffer1.png'), np.full((8, 8), 20, np.uint8))
    ds = AOIPretrainDataset(data_root=str(tmp_path), pipeline=[dict(type='LoadAOIImage')])
    assert len(ds) == 4
    img = ds[3]['img']
    assert img.shape == (8, 8, 2) and img[0, 0].tolist() == [10, 20]
    # stems below the root keep their sub-folders, so they stay unique
    assert sorted(ds.get_data_info(i)['stem'] for i in range(4)) == [
        'famA/img0', 'famA/img1', 'famB/deeper/img0', 'famB/deeper/img1']


def test_selfsup_preprocessor_two_channels(pretrain_scope):
    from mmpretrain.registry import MODELS
    pre = MODELS.build(dict(type='AOISelfSupDataPreprocessor', mean=[10., 20.], std=[2., 4.]))
    x = torch.stack([torch.full((2, 3, 3), 12.), torch.full((2, 3, 3), 10.)])
    x[:, 1] = 28.
    out = pre(dict(inputs=[x, x.clone()], data_samples=None))
    expected = torch.tensor([1., 0.]).view(2, 1, 1).expand(2, 3, 3)
    assert torch.allclose(out['inputs'][0][:, 0], expected)
    assert torch.allclose(out['inputs'][1][:, 1], torch.full((2, 3, 3), 2.))
    with pytest.raises(ValueError, match='mean has 2 values but std has 1'):
        MODELS.build(dict(type='AOISelfSupDataPreprocessor', mean=[1., 2.], std=[1.]))
    with pytest.raises(TypeError, match='to_rgb'):
        MODELS.build(dict(type='AOISelfSupDataPreprocessor', to_rgb=True))


def test_seg_preprocessor_accepts_two_values():
    from mmseg.registry import MODELS
    pre = MODELS.build(dict(type='SegDataPreProcessor', mean=[45.42, 59.82], std=[56.7, 69.03],
                            bgr_to_rgb=False, size_divisor=32, seg_pad_val=255))
    assert pre.mean.shape == (2, 1, 1)


# ---------------------------------------------------------------------------
# bad input: clear errors naming the file, nothing written
# ---------------------------------------------------------------------------
def _files(root):
    return sorted(osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_missing_buffer1(tmp_path):
    d = tmp_path / 'images' / 'train'
    d.mkdir(parents=True)
    cv2.imwrite(str(d / 'a_buffer0.png'), np.zeros((4, 4), np.uint8))
    before = _files(str(tmp_path))
    with pytest.raises(AOIDataError, match=r'a_buffer0\.png: no matching a_buffer1'):
        find_buffer_pairs(str(d))
    assert _files(str(tmp_path)) == before


def test_buffers_of_different_sizes(tmp_path):
    cv2.imwrite(str(tmp_path / 'a_buffer0.png'), np.zeros((4, 4), np.uint8))
    cv2.imwrite(str(tmp_path / 'a_buffer1.png'), np.zeros((5, 4), np.uint8))
    with pytest.raises(AOIDataError, match=r'a_buffer0\.png is 4x4 .*a_buffer1\.png is 4x5'):
        read_buffer_pair(str(tmp_path / 'a_buffer0.png'), str(tmp_path / 'a_buffer1.png'))


def test_truncated_and_garbage_images(tmp_path):
    good = str(tmp_path / 'g.png')
    cv2.imwrite(good, np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8))
    data = open(good, 'rb').read()
    trunc = tmp_path / 't_buffer0.png'
    trunc.write_bytes(data[:len(data) // 3])
    garbage = tmp_path / 'x_buffer0.png'
    garbage.write_bytes(b'this is not a png')
    for bad in (trunc, garbage):
        with pytest.raises(AOIDataError, match=bad.name):
            LoadAOIImage().transform(dict(buffer_paths=(str(bad), good)))


def test_mask_size_mismatch_and_bits(tmp_path):
    path = str(tmp_path / 'm.png')
    cv2.imwrite(path, np.zeros((5, 6), np.uint8))
    with pytest.raises(AOIDataError, match=r'm\.png is 6x5 .* image is 8x9'):
        read_multilabel_mask(path, 4, (9, 8))
    cv2.imwrite(path, np.full((5, 6), 16, np.uint8))  # bit 4 with 4 classes
    with pytest.raises(AOIDataError, match='bits set beyond the 4 classes'):
        read_multilabel_mask(path, 4)
    results = dict(img=np.zeros((9, 8, 2), np.uint8), seg_map_path=path, num_classes=8)
    with pytest.raises(AOIDataError, match='m.png'):
        LoadMultiLabelAnnotations().transform(results)


def test_npy_mask_values_and_unknown_format(tmp_path):
    p = str(tmp_path / 'm.npy')
    np.save(p, np.full((3, 3, 4), 2, np.uint8))
    with pytest.raises(AOIDataError, match=r'm\.npy has values outside'):
        read_multilabel_mask(p, 4)
    q = tmp_path / 'm.bmpx'
    q.write_bytes(b'x')
    with pytest.raises(AOIDataError, match='unknown label format'):
        read_multilabel_mask(str(q), 4)
    with pytest.raises(AOIDataError, match='unknown label format'):
        write_multilabel_mask(str(tmp_path / 'out.jpg'), np.zeros((2, 2, 4), np.uint8))
    assert not (tmp_path / 'out.jpg').exists()


def test_empty_split_folder(tmp_path):
    (tmp_path / 'images' / 'test').mkdir(parents=True)
    (tmp_path / 'labels' / 'test').mkdir(parents=True)
    with pytest.raises(AOIDataError, match=r'no <stem>_buffer0/<stem>_buffer1 image pairs '
                                           r'found in .*images/test'):
        AOIDataset(data_root=str(tmp_path),
                   data_prefix=dict(img_path='images/test', seg_map_path='labels/test'))


def test_missing_label_file(tmp_path):
    _write_sample(str(tmp_path), 'train', 's')
    os.remove(tmp_path / 'labels' / 'train' / 's.png')
    with pytest.raises(AOIDataError, match=r"no label for image 's'.*labels/train/s\.png"):
        AOIDataset(data_root=str(tmp_path))


def test_pack_refuses_single_label_map():
    with pytest.raises(ValueError, match='multi-label'):
        PackMultiLabelSegInputs().transform(dict(img=np.zeros((4, 4, 2), np.uint8),
                                                 gt_seg_map=np.zeros((4, 4), np.uint8)))


def test_independent_layout_through_the_config_training_pipeline(tmp_path, seg_scope):
    """The shipped training pipeline, unchanged, keeps overlapping classes end to end."""
    from mmengine.config import Config
    root = str(tmp_path)
    _, _, mask = _write_sample(root, 'train', 'dev_000', h=48, w=64, seed=4)
    cfg = Config.fromfile(osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                                   'configs', '_base_', 'datasets', 'aoi_synthetic.py'))
    ds = AOIDataset(data_root=root, pipeline=cfg.train_pipeline,
                    data_prefix=dict(img_path='images/train', seg_map_path='labels/train'))
    np.random.seed(0)
    overlap_seen = 0
    for _ in range(6):
        out = ds[0]
        gt = out['data_samples'].gt_sem_seg.data
        assert out['inputs'].shape == (2, 512, 512) and gt.shape == (4, 512, 512)
        assert set(torch.unique(gt).tolist()) <= {0, 1}
        # the padded image is all zero outside the content, and so is the mask
        assert int(gt.sum()) > 0
        overlap_seen += int(((gt[0] & gt[1]) > 0).any())
        # every label pixel lies on non-black image content (mask and image aligned);
        # channel 0 of the test image is random but the black padding is exactly 0
        content = (out['inputs'][0] > 0) | (out['inputs'][1] > 0)
        assert bool(content[gt.any(0).bool()].float().mean() > 0.97)
    assert overlap_seen >= 3  # wire-over-ball overlaps survive augmentation and cropping


def test_npy_fractional_values_refused(tmp_path):
    p = str(tmp_path / 'f.npy')
    arr = np.zeros((2, 2, 4), np.float32)
    arr[0, 0, 1] = 0.5
    np.save(p, arr)
    with pytest.raises(AOIDataError, match=r'f\.npy has values outside \{0, 1\} \(e\.g\. \[0\.5\]'):
        read_multilabel_mask(p, 4)


def test_synthetic_generated_only_into_its_own_root(tmp_path, monkeypatch):
    from aoissl_mm.datasets import synthetic
    calls = []
    monkeypatch.setattr(synthetic, 'ensure_synthetic_aoi',
                        lambda root, **kw: calls.append((root, kw)))
    own = str(tmp_path / 'synthetic_aoi')
    with pytest.raises(AOIDataError):  # the monkeypatched generator wrote nothing
        AOIDataset(data_root=own, synthetic=dict(data_root=own, seed=3))
    assert calls == [(own, dict(seed=3))]
    typo = str(tmp_path / 'my_dta')
    with pytest.raises(AOIDataError, match='image folder not found: .*my_dta/images/train'):
        AOIDataset(data_root=typo, synthetic=dict(data_root=own, seed=3))
    assert len(calls) == 1  # never generated into a user's (mistyped) data root
    with pytest.raises(KeyError, match="'synthetic' needs 'data_root'"):
        AOIDataset(data_root=own, synthetic=dict(seed=3))
