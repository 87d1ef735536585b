"""AOIInferencer on unlabelled images: full-size results, sliding window against windows run
by hand, the threshold rule at its boundary, arrays vs files, TTA vs hand-flipped views,
checkpoint errors. A FasterViT-0 + UPerNet with random weights (0 training iterations)."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from aoissl_mm.apis import AOIInferencer
from aoissl_mm.apis.inference_inputs import InferenceWarning
from aoissl_mm.datasets.io import AOIDataError, find_buffer_pairs, scan_buffer_pairs
from aoissl_mm.datasets.synthetic import generate_synthetic_aoi

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs', 'fastervit0_upernet_aoi_cpu.py')
RETRIEVAL_CFG = osp.join(ROOT, 'configs', 'retrieval', 'retrieval-patch-sim_vit-tiny_aoi-512.py')
MEAN, STD = np.array([45.42, 59.82]), np.array([56.70, 69.03])  # the config's Z-score
CROP = 64  # crop_size override: the slide window; stride = ceil(2/3 * 64) = 43


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory, random_segmentor_checkpoint):
    model, path = random_segmentor_checkpoint(tmp_path_factory.mktemp('infer'), CFG, seed=0)
    return path


@pytest.fixture(scope='module')
def inferencer(ckpt):
    return AOIInferencer(CFG, ckpt, cfg_options=dict(crop_size=(CROP, CROP)))


def _images(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (70, 90, 2), dtype=np.uint8),   # padded to 96x96: 2x2 windows
            rng.integers(0, 256, (64, 64, 2), dtype=np.uint8),   # exactly one window
            rng.integers(0, 256, (40, 56, 2), dtype=np.uint8)]   # padded to 64x64: one window


def _hand_slide(model, img):
    """Pad black to a multiple of 32, Z-score, windows at hard-coded starts, mean of sigmoids."""
    h, w = img.shape[:2]
    hp, wp = -(-h // 32) * 32, -(-w // 32) * 32
    padded = np.zeros((hp, wp, 2))
    padded[:h, :w] = img
    x = torch.from_numpy(((padded - MEAN) / STD).astype(np.float32)).permute(2, 0, 1)[None]
    starts = {64: [0], 96: [0, 32]}  # mmseg's grid for crop 64, stride 43, by hand
    total, count = np.zeros((4, hp, wp)), np.zeros((hp, wp))
    for y in starts[hp]:
        for x0 in starts[wp]:
            win = x[:, :, y:y + CROP, x0:x0 + CROP]
            meta = dict(img_shape=win.shape[2:], ori_shape=win.shape[2:], pad_shape=win.shape[2:])
            with torch.no_grad():
                prob = model.encode_decode(win, [meta]).sigmoid()[0].double().numpy()
            total[:, y:y + CROP, x0:x0 + CROP] += prob
            count[y:y + CROP, x0:x0 + CROP] += 1
    return (total / count)[:, :h, :w]


def test_full_size_and_slide_equals_windows_by_hand(inferencer):
    assert inferencer.model.test_cfg['mode'] == 'slide'
    assert tuple(inferencer.crop_size) == (CROP, CROP) and tuple(inferencer.stride) == (43, 43)
    images = _images()
    results = inferencer(images, batch_size=3, progress=False)
    for img, res in zip(images, results):
        h, w = img.shape[:2]
        assert res.masks.shape == (h, w, 4) and res.masks.dtype == np.uint8
        assert res.probabilities.shape == (4, h, w) and res.probabilities.dtype == np.float32
        assert res.class_names == ('wire', 'ball', 'wedge', 'epoxy')
        np.testing.assert_allclose(res.probabilities, _hand_slide(inferencer.model, img),
                                   atol=2e-5)
    # batches mixing sizes give what one image at a time gives
    single = inferencer(images, batch_size=1, progress=False)
    for a, b in zip(results, single):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)


def test_thresholds_per_class_at_the_boundary(ckpt, inferencer):
    img = _images()[0]
    probs = inferencer(img, progress=False)[0].probabilities
    # a threshold equal to an actual probability: ">=" keeps that pixel (fine-tuned rule)
    thr = [float(np.quantile(probs[c], q, method='lower')) for c, q in
           enumerate((0.5, 0.3, 0.7, 0.5))]
    custom = AOIInferencer(CFG, ckpt, thresholds=thr, cfg_options=dict(crop_size=(CROP, CROP)))
    assert custom.thresholds == tuple(thr) and not custom.strict
    res = custom(img, progress=False)[0]
    np.testing.assert_array_equal(res.probabilities, probs)
    expected = np.stack([probs[c] >= thr[c] for c in range(4)], axis=-1).astype(np.uint8)
    np.testing.assert_array_equal(res.masks, expected)
    for c in range(4):
        on_boundary = probs[c] == np.float32(thr[c])
        assert on_boundary.any() and res.masks[..., c][on_boundary].all()
        assert 0 < res.masks[..., c].mean() < 1
    with pytest.raises(ValueError, match='thresholds'):
        AOIInferencer(CFG, ckpt, thresholds=[0.5, 0.5])


def test_arrays_equal_files_8_and_16_bit(inferencer, tmp_path):
    rng = np.random.default_rng(3)
    img8 = rng.integers(0, 256, (70, 90, 2), dtype=np.uint8)
    img16 = rng.integers(0, 65536, (64, 80, 2), dtype=np.uint16)
    for i in range(2):
        cv2.imwrite(str(tmp_path / f'a_buffer{i}.png'), img8[..., i])
        cv2.imwrite(str(tmp_path / f'b_buffer{i}.tif'), img16[..., i])
    pairs = [(str(tmp_path / f'a_buffer{i}.png') for i in range(2)),
             (str(tmp_path / f'b_buffer{i}.tif') for i in range(2))]
    from_files = inferencer([tuple(p) for p in pairs], progress=False)
    with pytest.warns(InferenceWarning) as caught:  # 16-bit values, a 0-255 Z-score
        from_arrays = inferencer([img8, img16, img16], progress=False)[:2]
    assert [str(w.message).split(':')[0] for w in caught] == ['array_1']  # once per call
    assert 'tools/aoi_stats.py' in str(caught[0].message)
    assert [r.stem for r in from_files] == ['a', 'b']
    for f, a, img in zip(from_files, from_arrays, (img8, img16)):
        np.testing.assert_array_equal(f.image, img)
        np.testing.assert_array_equal(f.probabilities, a.probabilities)
        np.testing.assert_array_equal(f.masks, a.masks)
    # 16-bit data keeps its range: the same picture as 8 bit gives other probabilities
    as8 = inferencer((img16 >> 8).astype(np.uint8), progress=False)[0]
    assert not np.allclose(as8.probabilities, from_arrays[1].probabilities)
    with pytest.raises(AOIDataError, match='H x W x 2 uint8 or uint16'):
        inferencer(np.zeros((8, 8, 3), np.uint8), progress=False)


def test_tta_is_mean_of_flipped_views_by_hand(ckpt, inferencer):
    img = _images(5)[0]
    tta = AOIInferencer(CFG, ckpt, tta=True, cfg_options=dict(crop_size=(CROP, CROP)))
    res = tta(img, progress=False)[0]
    plain = [r.probabilities for r in inferencer(
        [img, np.ascontiguousarray(img[:, ::-1]), np.ascontiguousarray(img[::-1])],
        progress=False)]
    expected = (plain[0] + plain[1][:, :, ::-1] + plain[2][:, ::-1]) / 3
    np.testing.assert_allclose(res.probabilities, expected, atol=1e-6)
    np.testing.assert_array_equal(res.masks, (res.probabilities >= 0.5).transpose(1, 2, 0))
    assert not np.allclose(res.probabilities, plain[0], atol=1e-4)


def test_checkpoint_errors_name_the_file(ckpt, tmp_path):
    missing = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        AOIInferencer(CFG, missing)
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(open(ckpt, 'rb').read()[:5000])
    with pytest.raises(Exception, match='corrupt.pth'):
        AOIInferencer(CFG, str(corrupt))
    state = torch.load(ckpt, weights_only=True)['state_dict']
    state.pop('decode_head.conv_seg.bias')
    mismatched = str(tmp_path / 'mismatched.pth')
    torch.save(dict(state_dict=state), mismatched)
    with pytest.raises(ValueError, match='mismatched.pth'):
        AOIInferencer(CFG, mismatched)
    with pytest.raises(ValueError, match='checkpoint is required'):
        AOIInferencer(CFG, None)


def test_inputs_folder_pair_and_file(inferencer, tmp_path):
    rng = np.random.default_rng(1)
    for rel in ('x', 'lot/y', 'lot/deep/z'):
        for i in range(2):
            path = tmp_path / f'{rel}_buffer{i}.png'
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), rng.integers(0, 256, (40, 48), dtype=np.uint8))
    items, problems = inferencer.collect_inputs(str(tmp_path))
    assert [s for s, _ in items] == ['lot/deep/z', 'lot/y', 'x'] and problems == []
    assert scan_buffer_pairs(str(tmp_path)) == (find_buffer_pairs(str(tmp_path), True), [])
    items, _ = inferencer.collect_inputs(str(tmp_path / 'lot' / 'y_buffer1.png'))
    assert items == [('y', (str(tmp_path / 'lot' / 'y_buffer0.png'),
                            str(tmp_path / 'lot' / 'y_buffer1.png')))]
    (tmp_path / 'lot' / 'w_buffer0.png').write_bytes(b'')
    with pytest.raises(AOIDataError, match='w_buffer0.png'):
        inferencer.collect_inputs(str(tmp_path))
    items, problems = inferencer.collect_inputs(str(tmp_path), strict=False)
    assert len(items) == 3 and [p['file'] for p in problems] == [
        str(tmp_path / 'lot' / 'w_buffer0.png')]


def test_retrieval_config_memory_built_or_loaded(tmp_path):
    data_root = str(tmp_path / 'data')
    generate_synthetic_aoi(data_root, num_train=2, num_val=1, num_test=1, num_pretrain=0,
                           num_families=1, size_range=(96, 100), progress=False)
    cfg = Config.fromfile(RETRIEVAL_CFG)
    loader = cfg.custom_hooks[0].dataloader
    loader.dataset.data_root = loader.dataset.synthetic.data_root = data_root
    loader.num_workers = 0
    for loader in (cfg.custom_hooks[0].dataloader, cfg.test_dataloader, cfg.val_dataloader):
        for t in loader.dataset.pipeline:
            if t['type'] == 'PadCenterCrop':
                t['size'] = (CROP, CROP)
    cfg.crop_size = (CROP, CROP)  # the config's crop: the slide window
    cfg.model.random_backbone = True
    cfg.model.k = 3
    path = str(tmp_path / 'retrieval_tiny.py')
    cfg.dump(path)
    torch.manual_seed(0)
    built = AOIInferencer(path, None, progress=False)
    assert built.strict and tuple(built.crop_size) == (CROP, CROP)
    img = np.random.default_rng(2).integers(0, 256, (70, 90, 2), dtype=np.uint8)
    res = built(img, progress=False)[0]
    assert res.masks.shape == (70, 90, 4) and res.probabilities.shape == (4, 70, 90)
    inside = (res.probabilities > 0) & (res.probabilities < 1)
    c = int(inside.sum(axis=(1, 2)).argmax())
    thr = float(np.quantile(res.probabilities[c][inside[c]], 0.5, method='lower'))
    thresholds = [0.3] * 4
    thresholds[c] = thr
    mem = str(tmp_path / 'mem')
    built.model.memory.save(mem)
    torch.save(dict(state_dict=built.model.state_dict()), str(tmp_path / 'bb.pth'))
    loaded = AOIInferencer(path, str(tmp_path / 'bb.pth'), thresholds=thresholds,
                           cfg_options={'custom_hooks.0.load_from': mem})
    res2 = loaded(img, progress=False)[0]
    np.testing.assert_allclose(res2.probabilities, res.probabilities, atol=1e-6)
    # retrieval's strict rule: a score equal to its threshold is NOT in the mask
    expected = np.stack([res2.probabilities[k] > t for k, t in enumerate(thresholds)],
                        -1).astype(np.uint8)
    np.testing.assert_array_equal(res2.masks, expected)
    assert (res2.probabilities[c] == np.float32(thr)).any()
