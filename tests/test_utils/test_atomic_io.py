"""Atomic writing: the final name holds the old file or the complete new one, never a part."""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from aoissl_mm.utils.atomic_io import (
    _host,
    atomic_open,
    atomic_path,
    atomic_write_text,
    remove_stale_temporaries,
    temporary_name,
)


def test_temporary_name_is_hidden_unique_and_keeps_the_extension(tmp_path):
    path = str(tmp_path / 'mask.png')
    a, b = temporary_name(path), temporary_name(path)
    assert a != b
    assert osp.dirname(a) == str(tmp_path)
    assert osp.basename(a).startswith(f'.mask.png.{_host()}-{os.getpid()}.')
    assert a.endswith('.tmp.png') and '.' not in _host()


def test_atomic_path_writes_with_an_encoder_that_reads_the_extension(tmp_path):
    path = str(tmp_path / 'sub' / 'img.png')  # the folder is created
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with atomic_path(path) as tmp:
        assert not osp.exists(path)
        assert cv2.imwrite(tmp, image)  # cv2 picks PNG from the temporary name
    np.testing.assert_array_equal(cv2.imread(path, cv2.IMREAD_UNCHANGED), image)
    assert os.listdir(tmp_path / 'sub') == ['img.png']


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'report.json'
    path.write_text('old')
    with pytest.raises(RuntimeError, match='disk full'):
        with atomic_open(str(path), 'w') as f:
            f.write('half of the new')
            raise RuntimeError('disk full')
    assert path.read_text() == 'old'
    assert os.listdir(tmp_path) == ['report.json']


def test_atomic_write_text_replaces_and_refuses_append(tmp_path):
    path = str(tmp_path / 'last_checkpoint')
    atomic_write_text(path, 'a')
    atomic_write_text(path, 'b')
    with open(path) as f:
        assert f.read() == 'b'
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_open(path, 'a'):
            pass


def test_remove_stale_temporaries_only_removes_files_of_dead_writers(tmp_path):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)  # the process has exited: its pid is gone (or reused)
    host = _host()
    stale = tmp_path / f'.iter_4.pth.{host}-{dead_pid}.0123abcd.tmp'
    live = tmp_path / f'.iter_6.pth.{host}-{os.getpid()}.89abcdef.tmp'
    other = [tmp_path / 'iter_2.pth', tmp_path / '.hidden.tmp', tmp_path / 'x.1.0123abcd.tmp',
             tmp_path / f'.iter_8.pth.otherhost-{dead_pid}.0123abcd.tmp',  # a shared work dir
             tmp_path / f'.iter_9.pth.{host}-{10 ** 30}.0123abcd.tmp']  # no such pid type
    for p in [stale, live, *other]:
        p.write_bytes(b'x')
    removed = remove_stale_temporaries(str(tmp_path))
    if removed:  # a reused pid would make the writer look alive: then nothing is removed
        assert removed == [str(stale)]
    assert sorted(os.listdir(tmp_path)) == sorted(
        p.name for p in [live, *other] + ([] if removed else [stale]))
    assert remove_stale_temporaries(str(tmp_path / 'missing')) == []


def test_atomic_open_names_its_temporary_without_the_extension(tmp_path, monkeypatch):
    seen = []
    real_open = open

    def spy(file, *args, **kwargs):
        seen.append(osp.basename(str(file)))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr('builtins.open', spy)
    with atomic_open(str(tmp_path / 'iter_4.pth'), 'wb') as f:
        f.write(b'weights')
    assert seen[0].startswith('.iter_4.pth.') and seen[0].endswith('.tmp')  # never "*.pth"
    assert (tmp_path / 'iter_4.pth').read_bytes() == b'weights'
