"""tools/infer.py as a user meets it: usage errors as one line and exit 2 (tracebacks only for
bugs or with --debug), 16-bit and colour-buffer warnings in report.json, label-named
sub-folders listed as skipped, a re-used --out refused and --overwrite removing only the
previous run's files, a work dir as CHECKPOINT, the device default. Inputs written with PIL."""
import json
import os
import os.path as osp
import runpy
import shutil

import numpy as np
import pytest
import torch

from aoissl_mm.apis import AOIInferencer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs', 'fastervit0_upernet_aoi_cpu.py')
TOOL = runpy.run_path(osp.join(ROOT, 'tools', 'infer.py'))
FAST = ['--no-progress', '--no-overlay', '--cfg-options', 'crop_size=(64,64)']


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory, random_segmentor_checkpoint):
    model, path = random_segmentor_checkpoint(tmp_path_factory.mktemp('infer_cli'), CFG, seed=2)
    return path



def _infer(capsys, *args):
    """Exit status, stdout lines and stderr lines of one in-process run."""
    capsys.readouterr()
    code = TOOL['main']([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), [line for line in err.splitlines() if line.strip()]


def _snapshot(folder):
    """Every file under ``folder`` -> its modification time (0 for the user's files)."""
    return {str(p): 0 if p.name in ('mine.txt', 'user.png') else p.stat().st_mtime_ns
            for p in folder.rglob('*') if p.is_file()}


def _one_error_line(err, *words):
    assert len(err) == 1 and err[0].startswith('infer: error: '), err
    assert not any('Traceback' in line for line in err)
    for word in words:
        assert word in err[0], (word, err[0])


def test_usage_errors_are_one_line_exit_2(ckpt, tmp_path, capsys, image_writer):
    src = tmp_path / 'in'
    image_writer.pair(src, 'a', np.zeros((8, 8, 2), np.uint8))
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(open(ckpt, 'rb').read()[:4000])  # truncated
    out = tmp_path / 'out'
    code, _, err = _infer(capsys, CFG, corrupt, src, '--out', out, *FAST)
    assert code == 2
    _one_error_line(err, 'corrupt.pth', 'truncated')
    code, _, err = _infer(capsys, CFG, ckpt, src, '--out', out, '--thresholds', '0.5,0.4')
    assert code == 2
    _one_error_line(err, '--thresholds', 'list of 4 floats', 'got 2 values')
    code, _, err = _infer(capsys, CFG, 'none', src, '--out', out)
    assert code == 2
    _one_error_line(err, 'fastervit0_upernet_aoi_cpu.py', 'checkpoint is required')
    code, _, err = _infer(capsys, CFG, ckpt, tmp_path / 'nowhere', '--out', out)
    assert code == 2
    _one_error_line(err, 'INPUT', 'nowhere')
    code, _, err = _infer(capsys, CFG, ckpt, src, '--out', out, '--cfg-options', 'no_such=1')
    assert code == 2
    _one_error_line(err, "'no_such'")
    assert not out.exists()  # nothing written
    with pytest.raises(RuntimeError, match='corrupt.pth'):  # --debug: the traceback
        TOOL['main']([CFG, str(corrupt), str(src), '--out', str(out), '--debug'])


def test_a_bug_keeps_its_traceback(ckpt, tmp_path, monkeypatch, image_writer):
    def broken(*args, **kwargs):
        raise TypeError('a bug')
    monkeypatch.setattr('aoissl_mm.apis.AOIInferencer', broken)
    image_writer.pair(tmp_path / 'in', 'a', np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(TypeError, match='a bug'):
        TOOL['main']([CFG, ckpt, str(tmp_path / 'in'), '--out', str(tmp_path / 'out')])


def test_warnings_skipped_folders_and_overwrite(ckpt, tmp_path, capsys, image_writer):
    rng = np.random.default_rng(0)
    src = tmp_path / 'lot'
    img_a = rng.integers(0, 256, (40, 56, 2), dtype=np.uint8)
    image_writer.pair(src, 'a', img_a)
    # 12-bit data in 16-bit files
    image_writer.pair(src, 'd1', rng.integers(0, 4096, (40, 56, 2), dtype=np.uint16))
    image_writer.pair(src, 'sub/d2', rng.integers(300, 4096, (40, 56, 2), dtype=np.uint16))
    grey = rng.integers(0, 256, (40, 56), dtype=np.uint8)
    image_writer.image(src / 'c_buffer0.png', np.stack([grey] * 3, -1))  # an RGB buffer
    image_writer.image(src / 'c_buffer1.png', grey)
    image_writer.pair(src / 'sub' / 'masks', 'm', img_a)  # skipped by the walk: label folder name
    out = tmp_path / 'out'
    code, stdout, err = _infer(capsys, CFG, ckpt, src, '--out', out, '--no-progress',
                               '--cfg-options', 'crop_size=(64,64)')
    assert code == 0
    assert stdout[-1].endswith('0 failed, 1 skipped, 2 warning(s) (see report.json)')
    assert sum('tools/aoi_stats.py' in line for line in err) == 1  # once per run
    assert any(line.startswith('infer: warning: ') and 'c_buffer0.png has 3 channels' in line
               for line in err)
    assert any(line.startswith('  skipped: ') and osp.join('sub', 'masks') in line
               for line in err)
    report = json.loads((out / 'report.json').read_text())
    assert report['succeeded'] == ['a', 'c', 'd1', 'sub/d2'] and report['failed'] == []
    assert [s['file'] for s in report['skipped']] == [str(src / 'sub' / 'masks')]
    assert report['skipped'][0]['reason'].startswith('2 buffer file(s) not segmented')
    colour, scale = report['warnings']
    assert colour['file'] == str(src / 'c_buffer0.png') and colour['stem'] == 'c'
    assert scale['stem'] == 'd1' and scale['images'] == 2  # d1 and sub/d2, not a or c
    assert 'model.data_preprocessor.mean' in scale['warning']
    assert report['device'] == 'cpu' and report['checkpoint_file'] == ckpt
    assert not (out / '.infer_in_progress.json').exists()
    mask_a = (out / 'masks' / 'a.png').read_bytes()

    # the same --out again: refused, nothing touched
    before = _snapshot(out)
    code, _, err = _infer(capsys, CFG, ckpt, src / 'a_buffer0.png', '--out', out, *FAST)
    assert code == 2
    _one_error_line(err, str(out), 'previous run', '--overwrite')
    assert _snapshot(out) == before

    # --overwrite, CHECKPOINT a moved work dir: only 'a' now; the old masks and overlays go,
    # the user's own file stays; a file in masks/ the tool did not write blocks it
    work = tmp_path / 'work_dir'
    work.mkdir()
    shutil.copy(ckpt, work / 'iter_5.pth')
    (work / 'last_checkpoint').write_text('/elsewhere/work_dir/iter_5.pth')
    (out / 'mine.txt').write_text('keep me')
    (out / 'masks' / 'sub' / 'user.png').write_bytes(b'mine')
    code, _, err = _infer(capsys, CFG, work, src / 'a_buffer0.png', '--out', out, '--overwrite',
                          *FAST)
    assert code == 2
    _one_error_line(err, 'user.png', 'not listed')
    assert _snapshot(out) == dict(before, **{str(out / n): 0 for n in (
        'mine.txt', osp.join('masks', 'sub', 'user.png'))})  # nothing removed or rewritten
    (out / 'masks' / 'sub' / 'user.png').unlink()
    code, _, err = _infer(capsys, CFG, work, src / 'a_buffer0.png', '--out', out, '--overwrite',
                          *FAST)
    assert code == 0, err
    files = sorted(osp.relpath(osp.join(r, f), out) for r, _, fs in os.walk(out) for f in fs)
    assert files == ['areas.csv', osp.join('masks', 'a.png'), 'mine.txt', 'report.json']
    report = json.loads((out / 'report.json').read_text())
    assert report['succeeded'] == ['a'] and report['warnings'] == []
    assert report['checkpoint_file'] == str(work / 'iter_5.pth')
    assert (out / 'masks' / 'a.png').read_bytes() == mask_a  # the same weights


def test_device_defaults_to_cuda_when_available(ckpt, monkeypatch):
    assert TOOL['parse_args']([CFG, ckpt, 'x', '--out', 'y']).device is None
    moved = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.nn.Module, 'to', lambda self, *a, **k: moved.append(a) or self)
    inferencer = AOIInferencer(CFG, ckpt)
    assert inferencer.device == torch.device('cuda') and moved[-1] == (torch.device('cuda'), )
