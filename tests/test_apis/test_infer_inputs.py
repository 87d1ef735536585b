"""Inference inputs and outputs without a model: the device default, a work dir as checkpoint,
the 16-bit range check, label-named sub-folders that the walk skips, a colour buffer noted per
file, and an output folder holding a previous run (refused; with overwrite, only the previous
run's own files removed). Files are written with PIL or by hand, not by the project's writers."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from aoissl_mm.apis.inference_inputs import (
    InferenceWarning,
    collect_inputs,
    load_image,
    range_warning,
    resolve_checkpoint,
    resolve_device,
)
from aoissl_mm.apis.inference_writer import prepare_output_folder
from aoissl_mm.datasets.io import AOIDataError, scan_buffer_pairs

MEAN, STD = [45.42, 59.82], [56.70, 69.03]  # the configs' Z-score, 0-255 units



def test_device_defaults_to_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert resolve_device(None) == 'cuda' and resolve_device('cpu') == 'cpu'
    assert resolve_device('cuda:1') == 'cuda:1'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert resolve_device(None) == 'cpu'
    with pytest.raises(ValueError, match="device 'cuda:0': CUDA is not available"):
        resolve_device('cuda:0')


def test_work_dir_resolves_through_last_checkpoint(tmp_path, monkeypatch):
    work = tmp_path / 'work_dirs' / 'fv0_cpu'
    work.mkdir(parents=True)
    (work / 'iter_553.pth').write_bytes(b'x')
    assert resolve_checkpoint(str(work / 'iter_553.pth')) == str(work / 'iter_553.pth')
    with pytest.raises(FileNotFoundError, match='fv0_cpu is a folder without a last_checkpoint'):
        resolve_checkpoint(str(work))
    (work / 'last_checkpoint').write_text(str(work / 'iter_553.pth'))  # as mmengine writes it
    assert resolve_checkpoint(str(work)) == str(work / 'iter_553.pth')
    # written relative to where training ran; the work dir was moved since: its own file
    (work / 'last_checkpoint').write_text('old/place/iter_553.pth\n')
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint(str(work)) == str(work / 'iter_553.pth')
    (work / 'last_checkpoint').write_text('work_dirs/fv0_cpu/iter_553.pth')  # from the cwd
    assert resolve_checkpoint('work_dirs/fv0_cpu') == 'work_dirs/fv0_cpu/iter_553.pth'
    # a copy of the work dir whose last_checkpoint still names the original's existing file
    copy = tmp_path / 'copy'
    copy.mkdir()
    (copy / 'iter_553.pth').write_bytes(b'copy')
    (copy / 'last_checkpoint').write_text(str(work / 'iter_553.pth'))
    assert resolve_checkpoint(str(copy)) == str(copy / 'iter_553.pth')
    (work / 'last_checkpoint').write_text(str(work / 'iter_999.pth'))
    with pytest.raises(FileNotFoundError, match="names '.*iter_999.pth', which is not a file"):
        resolve_checkpoint(str(work))


def test_range_warning_only_for_16_bit_values_and_0_255_stats():
    img16 = np.zeros((4, 5, 2), np.uint16)
    assert range_warning(img16, MEAN, STD) is None  # 16-bit dtype, values within 0-255
    img16[2, 3, 1] = 255
    assert range_warning(img16, MEAN, STD) is None
    img16[1, 1, 0] = 256
    text = range_warning(img16, MEAN, STD)
    assert 'values up to 256' in text and 'tools/aoi_stats.py' in text
    assert 'model.data_preprocessor.mean' in text and 'model.data_preprocessor.std' in text
    assert range_warning(img16, [11673.1, 15373.2], [14571.0, 17740.3]) is None  # 16-bit stats
    assert range_warning(img16, None, None) is None  # no Z-score known
    assert range_warning(np.full((3, 3, 2), 255, np.uint8), MEAN, STD) is None


def test_label_named_sub_folders_are_reported(tmp_path, image_writer):
    rng = np.random.default_rng(0)
    w, zeros = image_writer, np.zeros((8, 10), np.uint8)
    w.pair(tmp_path, 'a', rng.integers(0, 256, (8, 10, 2), dtype=np.uint8))
    w.pair(tmp_path / 'lot' / 'masks', 'm', rng.integers(0, 256, (8, 10, 2), dtype=np.uint8))
    w.image(tmp_path / 'lot' / 'Labels' / 'deep' / 'q_buffer1.png', zeros)
    w.image(tmp_path / 'labels' / 'a.png', zeros)  # a real label: quiet
    dirs = []
    pairs, problems = scan_buffer_pairs(str(tmp_path), skipped_dirs=dirs)
    assert pairs == scan_buffer_pairs(str(tmp_path))[0] and [p[0] for p in pairs] == ['a']
    assert sorted(dirs) == sorted(str(tmp_path / d) for d in ('labels', 'lot/masks',
                                                               'lot/Labels'))
    skipped = []
    items, problems = collect_inputs(str(tmp_path), strict=False, skipped=skipped)
    assert [s for s, _ in items] == ['a'] and problems == []
    assert {s['file']: s['reason'].split(' ')[0] for s in skipped} == {
        str(tmp_path / 'lot' / 'masks'): '2', str(tmp_path / 'lot' / 'Labels'): '1'}
    assert all('skipped' in s['reason'] and 'INPUT' in s['reason'] for s in skipped)
    skipped_files = [s['file'] for s in skipped]
    with pytest.warns(InferenceWarning) as caught:
        items, _ = collect_inputs(str(tmp_path))  # the Python API warns instead
    assert sorted(str(w.message).split(': ')[0] for w in caught) == sorted(skipped_files)
    # the folder itself as INPUT is searched
    assert [s for s, _ in collect_inputs(str(tmp_path / 'lot' / 'masks'))[0]] == ['m']
    with pytest.raises(AOIDataError, match='not searched: .*lot/masks'):
        collect_inputs(str(tmp_path / 'lot'), strict=False, skipped=[])


def test_colour_buffer_noted_per_file(tmp_path, image_writer):
    grey = np.random.default_rng(1).integers(0, 256, (6, 7), dtype=np.uint8)
    image_writer.image(tmp_path / 'c_buffer0.png', np.stack([grey] * 3, -1))  # RGB file, R = G = B
    image_writer.image(tmp_path / 'c_buffer1.png', grey[::-1].copy())
    item = ('c', (str(tmp_path / 'c_buffer0.png'), str(tmp_path / 'c_buffer1.png')))
    notes = []
    with pytest.warns(InferenceWarning, match='3 channels; keeping the first one'):
        img = load_image(item, notes)
    np.testing.assert_array_equal(img, np.stack([grey, grey[::-1]], -1))
    assert len(notes) == 1 and notes[0]['file'] == str(tmp_path / 'c_buffer0.png')
    assert notes[0]['stem'] == 'c' and '3 channels' in notes[0]['warning']
    notes = []
    image_writer.image(tmp_path / 'c_buffer0.png', grey)
    load_image(item, notes)
    assert notes == []


def _previous_run(out, stems, report=True, csv=True):
    """The files a previous run of tools/infer.py leaves, written by hand."""
    for stem in stems:
        for d in ('masks', 'overlays'):
            (out / d / f'{stem}.png').parent.mkdir(parents=True, exist_ok=True)
            (out / d / f'{stem}.png').write_bytes(b'png')
    if report:
        (out / 'report.json').write_text(json.dumps(dict(succeeded=stems, failed=[])))
    if csv:
        (out / 'areas.csv').write_text('stem,height,width,wire_pixels\n' + ''.join(
            f'{s},4,4,0\n' for s in stems))


def _files(folder):
    return sorted(os.path.relpath(os.path.join(r, f), folder)
                  for r, _, fs in os.walk(folder) for f in fs)


def test_output_folder_refused_then_overwritten_own_files_only(tmp_path):
    out = tmp_path / 'out'
    assert prepare_output_folder(str(out)) == []  # new folder: nothing to do
    out.mkdir()
    (out / 'masks').mkdir()  # an empty folder is no previous output
    assert prepare_output_folder(str(out)) == []
    _previous_run(out, ['a', 'sub/b'])
    (out / 'notes.txt').write_text('mine')
    (out / 'other').mkdir()
    (out / 'other' / 'x.png').write_bytes(b'mine')
    with pytest.raises(FileExistsError, match=r'areas\.csv, report\.json, masks/, overlays/.*'
                       '--overwrite'):
        prepare_output_folder(str(out))
    before = _files(out)
    plan = prepare_output_folder(str(out), overwrite=True, dry_run=True)
    assert _files(out) == before and len(plan) == 6
    prepare_output_folder(str(out), overwrite=True)
    assert _files(out) == ['notes.txt', os.path.join('other', 'x.png')]
    assert not (out / 'masks').exists() and not (out / 'overlays').exists()


def test_overwrite_keeps_files_it_did_not_write(tmp_path):
    out = tmp_path / 'out'
    _previous_run(out, ['a'], report=False)  # only the CSV lists 'a'
    (out / 'masks' / 'user.png').write_bytes(b'mine')
    before = _files(out)
    with pytest.raises(FileExistsError, match=r'1 file\(s\) .* e\.g\. .*user\.png'):
        prepare_output_folder(str(out), overwrite=True)
    assert _files(out) == before  # nothing removed
    (out / 'masks' / 'user.png').unlink()
    (out / 'report.json').write_text('{"best": 0.5}')  # another tool's report
    with pytest.raises(FileExistsError, match="report.json: no list of stems under 'succeeded'"):
        prepare_output_folder(str(out), overwrite=True)
    assert (out / 'report.json').exists() and (out / 'masks' / 'a.png').exists()
    (out / 'report.json').unlink()
    (out / 'areas.csv').write_text('name,score\nx,1\n')
    with pytest.raises(FileExistsError, match='areas.csv: its columns'):
        prepare_output_folder(str(out), overwrite=True)


@pytest.mark.skipif(os.name == 'nt', reason='symbolic links need privileges on Windows')
@pytest.mark.parametrize('linked', ['masks/sub', 'masks'])
def test_overwrite_never_follows_a_symbolic_link(tmp_path, linked):
    """A record listing 'sub/x' must not remove victim/x.png through a linked masks/sub (or a
    linked masks/), although the path masks/sub/x.png resolves to it."""
    out, victim = tmp_path / 'out', tmp_path / 'victim'
    victim.mkdir()
    (victim / 'x.png').write_bytes(b'keep')
    (victim / 'sub').mkdir()
    (victim / 'sub' / 'x.png').write_bytes(b'keep')
    _previous_run(out, ['sub/x'])
    link = out / linked
    shutil.rmtree(link)
    os.symlink(victim, link, target_is_directory=True)
    assert os.path.exists(out / 'masks' / 'sub' / 'x.png')  # the removal path would resolve
    with pytest.raises(FileExistsError, match=f'{linked}: a symbolic link'):
        prepare_output_folder(str(out), overwrite=True)
    assert (victim / 'x.png').read_bytes() == b'keep'
    assert (victim / 'sub' / 'x.png').read_bytes() == b'keep'
    assert (out / 'report.json').exists()


def test_overwrite_refuses_a_folder_another_live_run_writes(tmp_path):
    """The in-progress record names its writer: a live process (here a sleeping child of
    this test) keeps --overwrite away; once it has exited, the folder is replaced."""
    import subprocess
    import sys

    from aoissl_mm.utils.atomic_io import this_host
    out = tmp_path / 'out'
    _previous_run(out, ['a'], report=False, csv=False)
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        (out / '.infer_in_progress.json').write_text(json.dumps(
            dict(host=this_host(), pid=child.pid, planned=['a'])))
        with pytest.raises(FileExistsError, match=f'another tools/infer.py run \\(pid '
                           f'{child.pid} on'):
            prepare_output_folder(str(out), overwrite=True)
        assert (out / 'masks' / 'a.png').exists()
    finally:
        child.kill()
        child.wait()
    assert len(prepare_output_folder(str(out), overwrite=True)) == 3  # 2 PNGs + the record


def test_overwrite_after_an_interrupted_run(tmp_path):
    out = tmp_path / 'out'
    _previous_run(out, ['a', 'b'], report=False, csv=False)  # killed before the CSV
    (out / '.infer_in_progress.json').write_text(json.dumps(dict(planned=['a', 'b', 'c'])))
    with pytest.raises(FileExistsError, match='previous run'):
        prepare_output_folder(str(out))
    assert len(prepare_output_folder(str(out), overwrite=True)) == 5
    assert _files(out) == []
    (tmp_path / 'file').write_text('x')
    with pytest.raises(NotADirectoryError, match='not a folder'):
        prepare_output_folder(str(tmp_path / 'file'))
