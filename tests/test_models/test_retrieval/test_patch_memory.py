"""PatchMemory vs brute force, sharding, IVF buffering, files, checks and atomic saves."""
import json
import os

import numpy as np
import pytest
import torch

from aoissl_mm.models.retrieval import PatchMemory, patch_memory_io


def _entries(n=240, d=16, seed=0):
    rng = np.random.default_rng(seed)
    keys = rng.standard_normal((n, d)).astype(np.float32) * rng.uniform(0.5, 3, (n, 1))
    keys[[50, 120, 121]] = keys[5] * 2  # same direction: identical normalised keys
    values = (rng.random((n, 4, 3)) < 0.3).astype(np.uint8)
    return keys, values


def _brute_force(keys, queries, k):
    unit = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q.astype(np.float64) @ unit.astype(np.float64).T
    return np.stack([np.lexsort((np.arange(len(keys)), -row))[:k] for row in sims])


def _memory(keys, values, **kwargs):
    memory = PatchMemory(16, (4, 3), device='cpu', **kwargs)
    memory.add(torch.from_numpy(keys[:100]), torch.from_numpy(values[:100]))
    memory.add(keys[100:], values[100:])
    return memory


def test_search_and_gather_vs_brute_force():
    keys, values = _entries()
    memory = _memory(keys, values, metadata=dict(patch_size=2))
    sims, ids = memory.search(keys[:20] * 7, 6)  # queries normalised too
    assert sims.dtype == torch.float32 and ids.dtype == torch.int64
    assert np.array_equal(ids.numpy(), _brute_force(keys, keys[:20], 6))
    assert ids[5, :3].tolist() == [5, 50, 120]  # identical keys: earlier id first
    assert torch.allclose(sims[:, 0], torch.ones(20), atol=1e-5) and (sims <= 1).all()
    gathered = memory.gather_values(ids)
    assert gathered.shape == (20, 6, 4, 3) and gathered.dtype == torch.float32
    assert np.array_equal(gathered.numpy(), values[ids.numpy()])
    assert len(memory) == 240 and memory.metadata == dict(patch_size=2)


def test_vit_tiny_bytes_per_entry():
    memory = PatchMemory(384, (256, 4), fp16_keys=True, device='cpu')
    assert memory.bytes_per_entry() == 384 * 2 + 128
    assert PatchMemory(384, (256, 4), device='cpu').bytes_per_entry() == 384 * 4 + 128


def test_errors_name_what_is_expected():
    memory = PatchMemory(16, (4, 3), device='cpu')
    with pytest.raises(ValueError, match='empty'):
        memory.search(np.ones((1, 16), np.float32), 1)
    with pytest.raises(ValueError, match=r'\(N, 16\)'):
        memory.add(np.ones((2, 8)), np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r'\(2, 4, 3\)'):
        memory.add(np.ones((2, 16)), np.zeros((2, 4, 2)))
    memory.add(np.ones((2, 16)), np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match='k=3.*holds 2'):
        memory.search(np.ones((1, 16), np.float32), 3)
    with pytest.raises(ValueError, match='JSON'):
        PatchMemory(16, (4, 3), metadata=dict(x=object()))


@pytest.mark.parametrize('index_type,kwargs', [('flat', {}), ('flat', dict(fp16_keys=True)),
                                               ('ivf', dict(nlist=3, nprobe=3))])
def test_sharded_equals_unsharded(index_type, kwargs, tmp_path):
    keys, values = _entries()
    whole = _memory(keys, values, index_type='flat', fp16_keys=kwargs.get('fp16_keys', False))
    sharded = _memory(keys, values, index_type=index_type, shard_size=70, **kwargs)
    assert sharded.info()['shard_counts'] == [70, 70, 70, 30]
    s1, i1 = whole.search(keys[::7], 9)
    s2, i2 = sharded.search(keys[::7], 9)
    assert torch.equal(i1, i2) and torch.allclose(s1, s2, atol=1e-6)
    assert torch.equal(sharded.gather_values(i2), whole.gather_values(i1))
    sharded.save(str(tmp_path / 'm'))
    assert sorted(os.listdir(tmp_path / 'm'))[:2] == ['index_00000.faiss', 'index_00001.faiss']
    loaded = PatchMemory.load(str(tmp_path / 'm'), device='cpu')
    assert torch.equal(loaded.search(keys[::7], 9)[1], i1)


def test_ivf_buffers_keys_until_trained():
    keys, values = _entries()
    memory = _memory(keys, values, index_type='ivf', nlist=4, nprobe=4)
    assert memory._shards[0].index.train_needed  # two adds buffered
    _, ids = memory.search(keys[:10], 5)
    assert np.array_equal(ids.numpy(), _brute_force(keys, keys[:10], 5))
    memory.add(keys[:3], values[:3])  # appended to the trained index
    assert memory.search(keys[:1], 2)[1].tolist() == [[0, 240]]


@pytest.mark.parametrize('backend', ['faiss', 'torch'])
def test_save_load_add_save_same_directory(tmp_path, backend):
    keys, values = _entries()
    path = str(tmp_path / 'mem')
    memory = PatchMemory(16, (4, 3), device='cpu', backend=backend,
                         metadata=dict(patch_size=2, classes=['a', 'b', 'c']))
    memory.add(keys[:200], values[:200])
    memory.save(path)
    assert sorted(os.listdir(path)) == ['index_00000.faiss', 'memory.json', 'values_00000.npy']
    loaded = PatchMemory.load(path, expected=dict(patch_size=2, classes=('a', 'b', 'c'),
                                                  key_dim=16), device='cpu', backend=backend)
    assert isinstance(loaded._shards[0].base, np.memmap)
    assert torch.equal(loaded.search(keys[:30], 5)[1], memory.search(keys[:30], 5)[1])
    loaded.add(keys[200:], values[200:])
    loaded.save(path)
    again = PatchMemory.load(path, mmap=False, device='cpu')  # faiss reads torch files too
    whole = _memory(keys, values)
    assert len(again) == 240 and json.load(open(os.path.join(path, 'memory.json')))['count'] == 240
    assert torch.equal(again.search(keys[::5], 7)[1], whole.search(keys[::5], 7)[1])
    everything = torch.arange(240)
    assert torch.equal(again.gather_values(everything), whole.gather_values(everything))
    assert torch.equal(loaded.gather_values(everything), whole.gather_values(everything))
    assert [p for p in os.listdir(tmp_path) if p != 'mem'] == []  # no temporary dirs left


def test_metadata_mismatch_errors(tmp_path):
    keys, values = _entries()
    path = str(tmp_path / 'mem')
    _memory(keys, values, metadata=dict(checkpoint='abc')).save(path)
    with pytest.raises(ValueError, match=f"{path}: 'checkpoint' is 'abc' .* 'xyz' is expected"):
        PatchMemory.load(path, expected=dict(checkpoint='xyz'))
    with pytest.raises(ValueError, match="has no 'level'"):
        PatchMemory.load(path, expected=dict(level='patch'))
    with pytest.raises(ValueError, match="'key_dim' is 16"):
        PatchMemory.load(path, expected=dict(key_dim=384))


def test_missing_and_corrupted_files(tmp_path):
    keys, values = _entries()
    path = tmp_path / 'mem'
    _memory(keys, values).save(str(path))
    index, vals, desc = path / 'index_00000.faiss', path / 'values_00000.npy', path / 'memory.json'
    good = {p: p.read_bytes() for p in (index, vals, desc)}

    def broken(file, data, error, match, verified=None):
        """``match``: the structural check (verify=False); ``verified``: the default load,
        which checks the file's SHA-256 first (None: the same message)."""
        file.write_bytes(data)
        for mmap in (True, False):
            with pytest.raises(error, match=match):
                PatchMemory.load(str(path), mmap=mmap, device='cpu', verify=False)
            with pytest.raises(error, match=verified or match):
                PatchMemory.load(str(path), mmap=mmap, device='cpu')
        file.write_bytes(good[file])

    digest = 'corrupted or truncated file: its SHA-256 is'
    broken(index, good[index][:-100], ValueError, 'index_00000.faiss.*truncated',
           f'index_00000.faiss: {digest}')
    broken(vals, good[vals][:-100], ValueError, 'values_00000.npy.*truncated',
           f'values_00000.npy: {digest}')
    broken(desc, good[desc][:50], ValueError, 'memory.json.*corrupted')
    short = tmp_path / 'short.npy'
    np.save(short, np.zeros((239, 2), np.uint8))
    broken(vals, short.read_bytes(), ValueError, r'values_00000.npy.*expected \(240, 2\)',
           f'values_00000.npy: {digest}')
    doc = json.loads(good[desc])
    doc['shards'][0]['count'] = doc['count'] = 241
    broken(desc, json.dumps(doc).encode(), ValueError, 'holds 240 keys.*says 241')
    os.remove(desc)
    with pytest.raises(FileNotFoundError, match='memory.json'):
        PatchMemory.load(str(path))
    with pytest.raises(FileNotFoundError, match='not found'):
        PatchMemory.load(str(tmp_path / 'nowhere'))


def test_failed_save_keeps_old_memory(tmp_path, monkeypatch):
    keys, values = _entries()
    path = str(tmp_path / 'mem')
    _memory(keys[:100], values[:100]).save(path)

    def fail(*args, **kwargs):
        raise OSError('disk full (simulated)')

    monkeypatch.setattr(patch_memory_io, '_write_values', fail)
    with pytest.raises(OSError, match='simulated'):
        _memory(keys, values).save(path)
    assert len(PatchMemory.load(path)) == 100
    assert os.listdir(tmp_path) == ['mem']
    monkeypatch.undo()
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'notes.txt').write_text('keep me')
    with pytest.raises(ValueError, match='not a saved memory'):
        _memory(keys, values).save(str(tmp_path / 'other'))
    assert (tmp_path / 'other' / 'notes.txt').read_text() == 'keep me'


def test_missing_neighbours_and_nprobe():
    keys, values = _entries()
    memory = _memory(keys, values, index_type='ivf', nlist=6, nprobe=1)
    sims, ids = memory.search(keys[:20], 200)  # one list of ~40 keys: most slots missing
    missing = ids < 0
    assert missing.any() and torch.isinf(sims[missing]).all()
    assert (memory.gather_values(ids)[missing] == 0).all()
    memory.nprobe = 6  # every list: exact
    assert (memory.search(keys[:20], 200)[1] >= 0).all()
    assert memory.info()['nprobe'] == 6


@pytest.mark.parametrize('index_type', ['flat', 'ivf'])
def test_memory_mapped_keys_search_equal_and_grow_in_a_new_shard(tmp_path, index_type):
    """mmap_keys: indexes read through faiss.IO_FLAG_MMAP_IFC (larger than RAM); adding must not
    touch them (faiss aborts on a viewed vector): new entries go to a new shard."""
    keys, values = _entries()
    path = str(tmp_path / 'mem')
    kwargs = dict(nlist=4, nprobe=4) if index_type == 'ivf' else {}
    memory = PatchMemory(16, (4, 3), device='cpu', index_type=index_type, shard_size=120,
                         **kwargs)
    memory.add(keys[:200], values[:200])
    memory.save(path)
    mapped = PatchMemory.load(path, device='cpu', mmap_keys=True)
    assert all(s.read_only for s in mapped._shards)
    assert torch.equal(mapped.search(keys[:40], 5)[1], memory.search(keys[:40], 5)[1])
    mapped.add(keys[200:], values[200:])  # would abort the process if it reached faiss
    assert len(mapped._shards) == 3 and len(mapped) == 240
    mapped.save(path)
    again = PatchMemory.load(path, device='cpu')
    assert len(again) == 240
    ids = again.search(keys[200:], 1)[1][:, 0]
    if index_type == 'flat':
        assert np.array_equal(ids.numpy(), _brute_force(keys, keys[200:], 1)[:, 0])
