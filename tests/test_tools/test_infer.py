"""tools/infer.py on a folder written with PIL (not the project's writer), nested sub-folders,
one corrupted and one unpaired file: bit-mask PNGs read back with read_multilabel_mask equal
the Python API's masks on the same pixels read with PIL, report.json lists the 2 bad files,
exit status 1, areas.csv counted from the written masks."""
import csv
import json
import os.path as osp
import runpy
import sys

import numpy as np
import pytest
from PIL import Image

from aoissl_mm.apis import AOIInferencer
from aoissl_mm.datasets.io import read_multilabel_mask

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs', 'fastervit0_upernet_aoi_cpu.py')
CLASSES = ('wire', 'ball', 'wedge', 'epoxy')


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory, random_segmentor_checkpoint):
    model, path = random_segmentor_checkpoint(tmp_path_factory.mktemp('infer_tool'), CFG, seed=1)
    return path


def _run(args, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['infer.py'] + args)
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(osp.join(ROOT, 'tools', 'infer.py'), run_name='__main__')
    return exc.value.code


def _write_pil(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(str(path))


def test_infer_folder_with_bad_files(ckpt, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    src = tmp_path / 'lot'
    good = {  # stem relative to the folder -> (H, W, 2) image, written by PIL
        'a': rng.integers(0, 256, (70, 90, 2), dtype=np.uint8),
        'sub/deep/b': rng.integers(0, 65536, (64, 72, 2), dtype=np.uint16),
        'sub/c': rng.integers(0, 256, (40, 56, 2), dtype=np.uint8),
    }
    for stem, img in good.items():
        sep = '_buffer_' if stem.endswith('b') else '_buffer'
        for i in range(2):
            _write_pil(src / f'{stem}{sep}{i}.png', np.ascontiguousarray(img[..., i]))
    _write_pil(src / 'sub' / 'bad_buffer0.png', good['a'][..., 0])
    full = (src / 'sub' / 'bad_buffer0.png').read_bytes()
    (src / 'sub' / 'bad_buffer1.png').write_bytes(full[:40])  # truncated
    _write_pil(src / 'lonely_buffer0.png', good['a'][..., 1])
    out = tmp_path / 'out'
    code = _run([CFG, ckpt, str(src), '--out', str(out), '--thresholds', '0.5,0.45,0.55,0.5',
                 '--batch-size', '2', '--cfg-options', 'crop_size=(64,64)'], monkeypatch)
    assert code == 1

    report = json.loads((out / 'report.json').read_text())
    assert sorted(f['file'] for f in report['failed']) == sorted(
        [str(src / 'sub' / 'bad_buffer1.png'), str(src / 'lonely_buffer0.png')])
    assert sorted(report['succeeded']) == sorted(good)
    assert report['thresholds'] == [0.5, 0.45, 0.55, 0.5]

    # reference: the Python API on the same pixels read back with PIL (not the project's reader)
    arrays = [np.stack([np.asarray(Image.open(p)) for p in sorted((src / osp.dirname(stem))
              .glob(f'{osp.basename(stem)}_buffer*.png'))], -1) for stem in good]
    for arr, img in zip(arrays, good.values()):
        np.testing.assert_array_equal(arr, img)
    api = AOIInferencer(CFG, ckpt, thresholds=[0.5, 0.45, 0.55, 0.5],
                        cfg_options=dict(crop_size=(64, 64)))
    expected = {stem: r.masks for stem, r in zip(good, api(arrays, progress=False))}

    with open(out / 'areas.csv', newline='') as f:
        rows = {r['stem']: r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted(good)
    for stem, img in good.items():
        h, w = img.shape[:2]
        mask = read_multilabel_mask(str(out / 'masks' / f'{stem}.png'), 4, expected_hw=(h, w))
        np.testing.assert_array_equal(mask, expected[stem])
        row = rows[stem]
        assert (int(row['height']), int(row['width'])) == (h, w)
        for c, name in enumerate(CLASSES):
            assert int(row[f'{name}_pixels']) == int(mask[..., c].sum())
            assert float(row[f'{name}_share']) == pytest.approx(mask[..., c].mean(), abs=1e-6)
        overlay = np.asarray(Image.open(out / 'overlays' / f'{stem}.png'))
        assert overlay.shape[1] == w and overlay.shape[0] >= h and overlay.shape[2] == 3
    assert any(0 < int(rows[s][f'{n}_pixels']) < int(rows[s]['height']) * int(rows[s]['width'])
               for s in good for n in CLASSES)
    assert not list(out.rglob('*.tmp*'))  # atomic writes leave no temporary file


def test_infer_clean_input_exits_0(ckpt, tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (48, 60, 2), dtype=np.uint8)
    for i in range(2):
        _write_pil(tmp_path / 'in' / f'x_buffer{i}.png', np.ascontiguousarray(img[..., i]))
    out = tmp_path / 'out'
    code = _run([CFG, ckpt, str(tmp_path / 'in' / 'x_buffer0.png'), '--out', str(out),
                 '--no-overlay', '--tta', '--no-progress'], monkeypatch)
    assert code == 0
    assert (out / 'masks' / 'x.png').is_file() and not (out / 'overlays').exists()
    report = json.loads((out / 'report.json').read_text())
    assert report['failed'] == [] and report['succeeded'] == ['x'] and report['tta'] is True
    assert _run([CFG, ckpt, str(tmp_path / 'nowhere'), '--out', str(tmp_path / 'out2')],
                monkeypatch) == 2  # a usage error: nothing done
