"""Search backends vs a numpy brute force (ties included), IVF, fp16 and the file format."""
import faiss
import numpy as np
import pytest

from aoissl_mm.models.retrieval import (
    TorchFlatIndex,
    build_search_index,
    faiss_gpu_count,
    read_search_index,
)
from aoissl_mm.models.retrieval.faiss_io import read_flat_index


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _data():
    rng = np.random.default_rng(0)
    keys = _unit(rng, 300, 24)
    keys[[40, 41, 90, 150, 151, 152, 153, 299]] = keys[7]  # 9 identical keys
    queries = np.concatenate([keys[[7, 3]], _unit(rng, 30, 24)])
    return keys, queries


def _brute_force(keys, queries, k):
    sims = queries.astype(np.float64) @ keys.astype(np.float64).T
    ids = np.arange(keys.shape[0])
    order = np.stack([np.lexsort((ids, -row))[:k] for row in sims])
    return np.take_along_axis(sims, order, 1), order


@pytest.mark.parametrize('backend', ['faiss', 'torch'])
@pytest.mark.parametrize('k', [1, 4, 12])
def test_flat_matches_brute_force_with_ties(backend, k):
    keys, queries = _data()
    index = build_search_index(24, backend=backend, device='cpu')
    index.add(keys[:100])
    index.add(keys[100:])
    sims, ids = index.search(queries, k)
    ref_s, ref_i = _brute_force(keys, queries, k)
    assert sims.dtype.is_floating_point and str(ids.dtype) == 'torch.int64'
    assert np.array_equal(ids.numpy(), ref_i)
    assert np.allclose(sims.numpy(), np.minimum(ref_s, 1), atol=1e-5)
    assert (sims <= 1).all()
    if k == 4:  # the tie reaches past k: the lowest ids of the 9 duplicates win
        assert ids[0].tolist() == [7, 40, 41, 90]


def test_torch_ties_resolved_across_chunks():
    rng = np.random.default_rng(1)
    keys = np.repeat(_unit(rng, 1, 8), 40, axis=0)  # 40 identical keys
    index = TorchFlatIndex(8, device='cpu', chunk_size=7)
    index.add(keys)
    assert index.search(keys[:2], 3)[1].tolist() == [[0, 1, 2]] * 2


def test_size_errors():
    index = build_search_index(4, device='cpu')
    with pytest.raises(ValueError, match='empty'):
        index.search(np.zeros((1, 4), np.float32), 1)
    index.add(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match='k=5.*holds 4'):
        index.search(np.zeros((1, 4), np.float32), 5)
    with pytest.raises(ValueError, match=r'\(N, 4\)'):
        index.search(np.zeros((1, 3), np.float32), 1)
    with pytest.raises(ValueError, match='needs faiss'):
        build_search_index(4, 'ivf', backend='torch')


def test_ivf_with_all_lists_equals_flat():
    keys, queries = _data()
    flat = build_search_index(24, device='cpu')
    flat.add(keys)
    ivf = build_search_index(24, 'ivf', nlist=6, nprobe=6, device='cpu')
    assert ivf.train_needed
    ivf.train(keys)
    ivf.add(keys)
    assert not ivf.train_needed and ivf.nlist == 6
    s1, i1 = flat.search(queries, 10)
    s2, i2 = ivf.search(queries, 10)
    assert np.array_equal(i1.numpy(), i2.numpy())
    assert np.allclose(s1.numpy(), s2.numpy(), atol=1e-5)


def test_ivfpq_builds_and_round_trips(tmp_path):
    keys, queries = _data()
    index = build_search_index(24, 'ivfpq', nlist=4, nprobe=4, pq_m=6, device='cpu')
    index.train(keys)
    index.add(keys)
    _, ids = index.search(queries, 5)
    index.write(str(tmp_path / 'pq.faiss'))
    back = read_search_index(str(tmp_path / 'pq.faiss'), device='cpu', nprobe=4)
    assert back.index_type == 'ivfpq' and back.pq_m == 6
    assert np.array_equal(back.search(queries, 5)[1].numpy(), ids.numpy())
    assert (ids[:, 0] >= 0).all()


@pytest.mark.parametrize('backend', ['faiss', 'torch'])
def test_fp16_close_to_fp32(backend):
    keys, queries = _data()
    ref_s, ref_i = _brute_force(keys, queries, 8)
    index = build_search_index(24, fp16=True, backend=backend, device='cpu')
    index.add(keys)
    sims, ids = index.search(queries, 8)
    assert np.abs(sims.numpy() - np.minimum(ref_s, 1)).max() < 2e-3
    assert (ids.numpy()[:, :3] == ref_i[:, :3]).mean() > 0.95
    assert index.bytes_per_key() == 2 * 24


@pytest.mark.parametrize('fp16', [False, True])
def test_torch_files_are_faiss_files(tmp_path, fp16):
    keys, queries = _data()
    torch_index = build_search_index(24, fp16=fp16, backend='torch', device='cpu')
    faiss_index = build_search_index(24, fp16=fp16, backend='faiss', device='cpu')
    for index in (torch_index, faiss_index):
        index.add(keys)
    torch_index.write(str(tmp_path / 't.faiss'))
    faiss_index.write(str(tmp_path / 'f.faiss'))
    assert (tmp_path / 't.faiss').read_bytes() == (tmp_path / 'f.faiss').read_bytes()
    for backend in ('faiss', 'torch'):
        back = read_search_index(str(tmp_path / 't.faiss'), device='cpu', backend=backend)
        assert back.fp16 == fp16 and back.ntotal == 300
        assert np.array_equal(back.search(queries, 6)[1].numpy(),
                              faiss_index.search(queries, 6)[1].numpy())


def test_truncated_index_file(tmp_path):
    keys, _ = _data()
    index = build_search_index(24, device='cpu')
    index.add(keys)
    path = tmp_path / 'x.faiss'
    index.write(str(path))
    path.write_bytes(path.read_bytes()[:500])
    for backend in ('faiss', 'torch'):
        with pytest.raises(ValueError, match='x.faiss.*(truncated|corrupted)'):
            read_search_index(str(path), device='cpu', backend=backend)
    with pytest.raises(FileNotFoundError, match='nope.faiss'):
        read_search_index(str(tmp_path / 'nope.faiss'))
    with pytest.raises(ValueError, match='truncated'):
        read_flat_index(str(path))


def test_device_auto_is_cpu_without_faiss_gpus():
    index = build_search_index(4)
    assert index.gpus == faiss_gpu_count()
    if faiss_gpu_count() == 0:
        assert isinstance(index._index, faiss.IndexFlatIP)
        with pytest.raises(ValueError, match='no GPU'):
            build_search_index(4, device='cuda')
