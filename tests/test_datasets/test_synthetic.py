"""Tests of the procedural synthetic AOI benchmark (tiny sizes, CPU only)."""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np
import pytest

from aoissl_mm.datasets.io import find_buffer_pairs, read_buffer_pair, read_multilabel_mask
from aoissl_mm.datasets.synthetic import (
    MANIFEST_NAME,
    ensure_synthetic_aoi,
    generate_synthetic_aoi,
    make_family_layout,
    overlap_stats,
    render_sample,
)
from aoissl_mm.datasets.synthetic import generate as synthetic_generate

TINY = dict(num_train=4, num_val=1, num_test=2, num_pretrain=3, num_families=2,
            size_range=(160, 256), progress=False)
WIRE, BALL, WEDGE, EPOXY = range(4)


def _tree(root: str) -> Dict[str, bytes]:
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


@pytest.fixture(scope='module')
def split_samples() -> List[Tuple[np.ndarray, np.ndarray]]:
    """A labelled split of 12 renderings from 3 families (in memory)."""
    fams = [make_family_layout(np.random.default_rng([7, f]), f, (192, 320)) for f in range(3)]
    return [render_sample(fams[i % 3], np.random.default_rng([7, 100, i])) for i in range(12)]


def test_deterministic_per_seed(tmp_path):
    a = generate_synthetic_aoi(str(tmp_path / 'a'), seed=3, **TINY)
    generate_synthetic_aoi(str(tmp_path / 'b'), seed=3, **TINY)
    generate_synthetic_aoi(str(tmp_path / 'c'), seed=4, **TINY)
    ta, tb, tc = (_tree(str(tmp_path / n)) for n in 'abc')
    assert ta == tb
    assert set(ta) == set(tc)
    images = [k for k in ta if k.endswith('_buffer0.png')]
    assert len(images) == 4 + 1 + 2 + 3
    assert all(ta[k] != tc[k] for k in images)
    assert json.loads(ta[MANIFEST_NAME].decode()) == json.loads(json.dumps(a))


def test_layout_loads_through_io(tmp_path):
    root = str(tmp_path / 'syn')
    manifest = generate_synthetic_aoi(root, seed=0, **TINY)
    assert sorted(os.listdir(root)) == ['images', 'labels', 'pretrain', MANIFEST_NAME]
    for split, n in (('train', 4), ('val', 1), ('test', 2)):
        pairs = find_buffer_pairs(osp.join(root, 'images', split))
        assert len(pairs) == n == manifest['counts'][split]
        for stem, p0, p1 in pairs:
            img = read_buffer_pair(p0, p1)
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 2
            assert 160 <= img.shape[0] <= 256 and 160 <= img.shape[1] <= 256
            mask = read_multilabel_mask(osp.join(root, 'labels', split, stem + '.png'), 4,
                                        expected_hw=img.shape[:2])
            assert mask.shape == img.shape[:2] + (4,) and mask.max() == 1
            assert cv2.imread(p0, cv2.IMREAD_UNCHANGED).ndim == 2   # 8-bit grey PNG
    pre = find_buffer_pairs(osp.join(root, 'pretrain'), recursive=True)
    assert len(pre) == 3
    assert {stem.split(os.sep)[0] for stem, _, _ in pre} == {'fam00', 'fam01'}
    with open(osp.join(root, MANIFEST_NAME), encoding='utf-8') as f:
        on_disk = json.load(f)
    assert on_disk['classes'] == ['wire', 'ball', 'wedge', 'epoxy']
    assert on_disk['parameters']['seed'] == 0 and len(on_disk['families']) == 2
    shares = on_disk['labelled']['class_share']
    assert abs(sum(shares.values()) - 1.0) < 1e-4


def test_loads_through_aoi_dataset(tmp_path):
    from aoissl_mm.datasets import AOIDataset
    root = str(tmp_path / 'syn')
    generate_synthetic_aoi(root, seed=1, **TINY)
    ds = AOIDataset(data_root=root, data_prefix=dict(img_path='images/train',
                                                     seg_map_path='labels/train'),
                    pipeline=[])
    assert len(ds) == 4
    assert ds[0]['seg_map_path'].endswith('.png')


def test_classes_overlap(split_samples):
    on_wire = 0
    wire_total = 0
    pair_counts = np.zeros((4, 4), dtype=np.int64)
    for _, mask in split_samples:
        m = mask.astype(bool)
        for a in range(4):
            for b in range(4):
                pair_counts[a, b] += int(np.count_nonzero(m[..., a] & m[..., b]))
        wire_total += int(m[..., WIRE].sum())
        others = m[..., BALL] | m[..., WEDGE] | m[..., EPOXY]
        on_wire += int(np.count_nonzero(m[..., WIRE] & others))
    for other in (BALL, WEDGE, EPOXY):
        assert pair_counts[WIRE, other] > 0, f'wire never overlaps class {other}'
    assert on_wire / wire_total > 0.03
    # balls sit on the die and wedges on the leads, neither on the epoxy fillet
    assert pair_counts[BALL, WEDGE] == 0


def test_class_pixel_ordering(split_samples):
    totals = np.zeros(4, dtype=np.int64)
    for _, mask in split_samples:
        totals += mask.reshape(-1, 4).sum(axis=0, dtype=np.int64)
    wire, ball, wedge, epoxy = totals
    assert epoxy > 2 * wire > 0
    assert wire > ball > wedge > 0


def test_overlap_stats_against_hand_count():
    mask = np.zeros((2, 3, 4), dtype=np.uint8)
    mask[0, 0] = [1, 1, 0, 0]      # wire on ball
    mask[0, 1] = [1, 0, 0, 1]      # wire on epoxy
    mask[0, 2] = [1, 0, 0, 0]      # bare wire
    mask[1, 0] = [0, 0, 0, 1]
    mask[1, 1] = [0, 0, 1, 0]
    st = overlap_stats(mask)
    assert st['total_pixels'] == 6
    assert st['class_pixels'] == dict(wire=3, ball=1, wedge=1, epoxy=2)
    assert st['on']['wire'] == dict(ball=pytest.approx(1 / 3, abs=1e-5), wedge=0.0,
                                    epoxy=pytest.approx(1 / 3, abs=1e-5))
    assert st['on']['ball']['wire'] == 1.0
    assert st['on']['epoxy']['wire'] == 0.5
    assert st['on_any_other']['wire'] == pytest.approx(2 / 3, abs=1e-5)
    assert st['class_share']['wire'] == pytest.approx(3 / 7, abs=1e-5)
    assert st['image_share']['epoxy'] == pytest.approx(2 / 6, abs=1e-5)
    pooled = overlap_stats([mask, mask])
    assert pooled['class_pixels']['wire'] == 6
    with pytest.raises(ValueError, match='class names'):
        overlap_stats(mask, class_names=['a', 'b'])


def test_black_borders(split_samples):
    large = 0
    for img, mask in split_samples:
        zero = ~np.any(img > 0, axis=2)
        edges = (zero[0].all(), zero[-1].all(), zero[:, 0].all(), zero[:, -1].all())
        # the frame is exactly zero in both buffers and carries no label
        assert not mask[zero].any()
        if any(edges) and zero.mean() > 0.1:
            large += 1
    assert large >= len(split_samples) // 2


def test_channels_differ_but_share_structure(split_samples):
    for img, _ in split_samples:
        dev = np.any(img > 0, axis=2)
        a, b = img[..., 0][dev].astype(np.float64), img[..., 1][dev].astype(np.float64)
        assert np.corrcoef(a, b)[0, 1] < 0.98
        grads = []
        for c in range(2):
            x = cv2.GaussianBlur(img[..., c].astype(np.float32), (0, 0), 1.5)
            grads.append(np.hypot(cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1)))
        inner = cv2.erode(dev.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        assert np.corrcoef(grads[0][inner], grads[1][inner])[0, 1] > 0.3


def test_wire_widths(split_samples):
    widths = []
    for _, mask in split_samples:
        wire = np.ascontiguousarray(mask[..., WIRE])
        dist = cv2.distanceTransform(wire, cv2.DIST_L2, 5)
        assert np.percentile(dist[wire > 0], 99) <= 2.5      # no blobs thicker than ~5 px
        n, lab, stats, _ = cv2.connectedComponentsWithStats(wire, connectivity=8)
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] < 30:
                continue
            comp = (lab == i).astype(np.uint8)
            contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            perimeter = sum(cv2.arcLength(c, True) for c in contours)
            widths.append(2.0 * stats[i, cv2.CC_STAT_AREA] / perimeter)  # band: A = w * P / 2
    widths = np.asarray(widths)
    assert len(widths) >= 12
    assert np.percentile(widths, 5) >= 1.8 and np.percentile(widths, 95) <= 4.3


def test_image_sizes_vary_independently(split_samples):
    shapes = np.array([img.shape[:2] for img, _ in split_samples])
    assert shapes.min() >= 192 and shapes.max() <= 320
    assert len({tuple(s) for s in shapes}) > 3
    assert np.any(shapes[:, 0] != shapes[:, 1])


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = {'n': 0}
    real = synthetic_generate.render_sample

    def failing(layout, rng):
        calls['n'] += 1
        if calls['n'] == 3:
            raise KeyboardInterrupt
        return real(layout, rng)

    monkeypatch.setattr(synthetic_generate, 'render_sample', failing)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic_aoi(str(tmp_path / 'out'), **TINY)
    assert calls['n'] == 3
    assert os.listdir(tmp_path) == []


def test_refuses_non_empty_root_unless_overwrite(tmp_path):
    root = tmp_path / 'out'
    root.mkdir()
    (root / 'keep.txt').write_text('user data')
    with pytest.raises(FileExistsError, match='not empty'):
        generate_synthetic_aoi(str(root), **TINY)
    assert os.listdir(root) == ['keep.txt']
    generate_synthetic_aoi(str(root), overwrite=True, **TINY)
    assert not (root / 'keep.txt').exists() and (root / MANIFEST_NAME).is_file()
    assert sorted(os.listdir(tmp_path)) == ['out']
    empty = tmp_path / 'empty'
    empty.mkdir()
    generate_synthetic_aoi(str(empty), **TINY)      # an empty folder is fine
    assert (empty / MANIFEST_NAME).is_file()
    with pytest.raises(ValueError, match='num_train'):
        generate_synthetic_aoi(str(tmp_path / 'x'), num_train=-1)
    with pytest.raises(ValueError, match='size_range'):
        generate_synthetic_aoi(str(tmp_path / 'x'), size_range=(300, 200))


def test_ensure_is_noop_when_manifest_exists(tmp_path, monkeypatch):
    root = tmp_path / 'data'
    root.mkdir()
    (root / MANIFEST_NAME).write_text('{}')

    def boom(*args, **kwargs):
        raise AssertionError('must not generate')

    monkeypatch.setattr(synthetic_generate, 'generate_synthetic_aoi', boom)
    assert ensure_synthetic_aoi(str(root), **TINY) == str(root)
    assert os.listdir(root) == [MANIFEST_NAME]


def test_ensure_generates_when_missing(tmp_path):
    root = str(tmp_path / 'data')
    assert ensure_synthetic_aoi(root, seed=2, **TINY) == root
    assert osp.isfile(osp.join(root, MANIFEST_NAME))
    assert len(find_buffer_pairs(osp.join(root, 'images', 'train'))) == 4


def test_single_device(tmp_path):
    root = str(tmp_path / 'one')
    manifest = generate_synthetic_aoi(root, single_device=True, **TINY)
    assert [f['name'] for f in manifest['families']] == ['fam00']
    stems = [s for split in ('train', 'val', 'test')
             for s, _, _ in find_buffer_pairs(osp.join(root, 'images', split))]
    assert stems and all(s.startswith('fam00_') for s in stems)
    assert os.listdir(osp.join(root, 'pretrain')) == ['fam00']


def test_tool_prints_table(tmp_path, capsys):
    import importlib.util
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    path = osp.join(repo, 'tools', 'make_synthetic_aoi.py')
    spec = importlib.util.spec_from_file_location('make_synthetic_aoi', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out_root = str(tmp_path / 'cli')
    assert tool.main([out_root, '--num-train', '2', '--num-val', '1', '--num-test', '1',
                      '--num-pretrain', '1', '--size-min', '160', '--size-max', '224',
                      '--no-progress']) == 0
    text = capsys.readouterr().out
    assert 'wire' in text and 'epoxy' in text and 'any' in text
    assert osp.isfile(osp.join(out_root, MANIFEST_NAME))
