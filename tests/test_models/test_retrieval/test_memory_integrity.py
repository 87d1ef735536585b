"""Saved memories: a SHA-256 per data file (a flipped byte is an error naming the file), the
``verify=False`` opt-out, format-1 memories without checksums, and empty memories refused."""
import hashlib
import json
import os
import warnings

import numpy as np
import pytest
import torch

from aoissl_mm.models.retrieval import PatchMemory, patch_memory_io

DIGEST = 'corrupted or truncated file: its SHA-256 is'


def _saved(path, n=60, shard_size=None):
    rng = np.random.default_rng(0)
    keys = rng.standard_normal((n, 8)).astype(np.float32)
    values = (rng.random((n, 4, 3)) < 0.4).astype(np.uint8)
    memory = PatchMemory(8, (4, 3), device='cpu', shard_size=shard_size)
    memory.add(keys, values)
    memory.save(str(path))
    return keys, values


def _flip_last_byte(file):
    data = bytearray(file.read_bytes())
    data[-1] ^= 0x10  # the last byte: key data (index) or packed mask bits (values)
    file.write_bytes(bytes(data))


def test_checksums_are_the_files_sha256(tmp_path):
    path = tmp_path / 'mem'
    _saved(path, shard_size=25)
    doc = json.loads((path / 'memory.json').read_text())
    assert doc['format_version'] == 2 and len(doc['shards']) == 3
    for entry in doc['shards']:  # reference: hashlib over the whole file at once
        for kind in ('index', 'values'):
            data = (path / entry[kind]).read_bytes()
            assert entry[f'{kind}_sha256'] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize('name', ['values_00000.npy', 'index_00000.faiss'])
def test_flipped_byte_is_refused_naming_the_file(tmp_path, name):
    path = tmp_path / 'mem'
    keys, values = _saved(path)
    _flip_last_byte(path / name)
    for mmap in (True, False):
        with pytest.raises(ValueError, match=f'{path / name}: {DIGEST}'):
            PatchMemory.load(str(path), mmap=mmap, device='cpu')
    # the opt-out loads it: the flipped byte is really there and would go unnoticed
    loaded = PatchMemory.load(str(path), device='cpu', verify=False)
    if name.startswith('values'):
        assert not torch.equal(loaded.gather_values(torch.arange(60)),
                               torch.from_numpy(values).float())
    else:
        assert len(loaded) == 60
    _flip_last_byte(path / name)  # flipped back: verified again
    ok = PatchMemory.load(str(path), device='cpu')
    assert torch.equal(ok.gather_values(torch.arange(60)), torch.from_numpy(values).float())


def test_unverified_memory_is_verified_before_it_is_saved_again(tmp_path):
    """verify=False must not launder a corrupted file under new checksums."""
    path = tmp_path / 'mem'
    keys, values = _saved(path)
    _flip_last_byte(path / 'values_00000.npy')
    before = {f: (path / f).read_bytes() for f in os.listdir(path)}
    memory = PatchMemory.load(str(path), device='cpu', verify=False)
    memory.add(keys[:2], values[:2])
    with pytest.raises(ValueError, match=f'values_00000.npy: {DIGEST}'):
        memory.save(str(path))
    assert {f: (path / f).read_bytes() for f in os.listdir(path)} == before
    assert os.listdir(tmp_path) == ['mem']
    # its source gone: nothing to check it against, so it is not saved anywhere
    moved = tmp_path / 'moved'
    os.rename(path, moved)
    with pytest.raises(FileNotFoundError, match='loaded with verify=False from .*mem, which no '
                       'longer exists'):
        memory.save(str(tmp_path / 'elsewhere'))
    assert sorted(os.listdir(tmp_path)) == ['moved']


def test_format_1_memory_without_checksums_loads_with_a_warning(tmp_path):
    path = tmp_path / 'mem'
    _, values = _saved(path)
    doc = json.loads((path / 'memory.json').read_text())
    doc['format_version'] = 1
    for entry in doc['shards']:
        del entry['index_sha256'], entry['values_sha256']
    (path / 'memory.json').write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match='saved without checksums'):
        memory = PatchMemory.load(str(path), device='cpu')
    assert torch.equal(memory.gather_values(torch.arange(60)), torch.from_numpy(values).float())
    memory.save(str(path))  # saving again records them
    assert json.loads((path / 'memory.json').read_text())['format_version'] == 2
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        PatchMemory.load(str(path), device='cpu')
    doc['format_version'] = 2  # a format-2 description without checksums is corrupted
    (path / 'memory.json').write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="shard 0 has no valid 'index_sha256'"):
        PatchMemory.load(str(path), device='cpu')


def test_empty_memory_is_refused_at_save_and_at_load(tmp_path):
    path = tmp_path / 'empty'
    with pytest.raises(ValueError, match=f'empty memory \\(0 entries\\) to {path}'):
        PatchMemory(8, (4, 3), device='cpu').save(str(path))
    assert not path.exists()
    # one written anyway (by hand, as an older version could): refused when loaded
    path.mkdir()
    doc = dict(format=patch_memory_io.FORMAT_NAME, format_version=2, key_dim=8,
               value_shape=[4, 3], value_bytes=2, count=0, shard_size=None, index_type='flat',
               fp16_keys=False, nlist=None, nprobe=16, pq_m=None, shards=[], metadata={})
    (path / 'memory.json').write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=f'memory {path} is empty \\(0 entries\\)'):
        PatchMemory.load(str(path), device='cpu')


def test_k_larger_than_the_memory_names_its_size_and_directory(tmp_path):
    path = tmp_path / 'mem'
    keys, _ = _saved(path, n=5)
    memory = PatchMemory.load(str(path), device='cpu')
    with pytest.raises(ValueError, match=f'k=6 .*holds 5 entries, saved in {path}'):
        memory.search(keys[:1], 6)
