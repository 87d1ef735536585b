"""Search backends vs a numpy brute force (ties included), IVF, fp16, the file format, GPUs.

The GPU placements run on :class:`_FakeFaissGpu`, CPU faiss behind faiss-gpu's API.
"""
import types

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


class _FakeFaissGpu(types.ModuleType):
    """CPU faiss plus faiss-gpu's Python API; the "GPU" indexes are CPU indexes.

    Placement follows faiss-gpu's cloner rules (``faiss/gpu/GpuCloner.cpp``):
    one GPU gets a plain index; several GPUs with ``shard=True`` get an
    ``IndexShards`` that splits a flat index's keys by id range with
    ``successive_ids`` (so it accepts a single ``add``) and an IVF index's
    lists by id modulo without; ``index_gpu_to_cpu`` merges shards back
    (flat only with successive ids, IVF by ``merge_from``) and cannot merge
    anything else. A GPU flat index stores fp16 when asked (here a QT_fp16
    scalar quantizer) and comes back to the CPU as ``IndexFlat``.
    """

    def __init__(self, gpus: int) -> None:
        super().__init__('fake_faiss_gpu')
        self.gpus = gpus
        self.GpuParameterSpace = faiss.ParameterSpace

    def __getattr__(self, name):
        return getattr(faiss, name)

    class StandardGpuResources:
        pass

    class GpuClonerOptions:
        useFloat16 = False

    class GpuMultipleClonerOptions(GpuClonerOptions):
        shard = False

    def get_num_gpus(self) -> int:
        return self.gpus

    def index_cpu_to_gpu(self, resources, device, cpu_index, co=None):
        index = faiss.downcast_index(cpu_index)  # a view: ``cpu_index`` keeps it alive
        sq = isinstance(index, faiss.IndexScalarQuantizer) and \
            index.sq.qtype == faiss.ScalarQuantizer.QT_fp16
        if isinstance(index, faiss.IndexFlat) or sq:
            fp16 = sq or bool(co is not None and co.useFloat16)
            gpu = (faiss.IndexScalarQuantizer(index.d, faiss.ScalarQuantizer.QT_fp16,
                                              index.metric_type)
                   if fp16 else faiss.IndexFlat(index.d, index.metric_type))
            if index.ntotal:
                gpu.add(index.reconstruct_n(0, index.ntotal))
            return gpu
        if isinstance(index, faiss.IndexIVF):
            return faiss.clone_index(index)
        raise RuntimeError('This index type is not implemented on GPU.')

    def index_cpu_to_gpu_multiple_py(self, resources, cpu_index, co=None, gpus=None):
        n = len(resources)
        if n == 1:
            return self.index_cpu_to_gpu(resources[0], 0, cpu_index, co)
        index = faiss.downcast_index(cpu_index)
        if not isinstance(index, (faiss.IndexFlat, faiss.IndexIVF)):
            return faiss.clone_index(index)  # the C++ cloner leaves it on the CPU
        if co is None or not co.shard:
            replicas = faiss.IndexReplicas()
            for i, res in enumerate(resources):
                replicas.addIndex(self.index_cpu_to_gpu(res, i, index, co))
            return replicas
        flat = isinstance(index, faiss.IndexFlat)
        shards = faiss.IndexShards(index.d, True, flat)
        for i, res in enumerate(resources):
            if flat:
                part = faiss.IndexFlat(index.d, index.metric_type)
                i0, i1 = index.ntotal * i // n, index.ntotal * (i + 1) // n
                if i1 > i0:
                    part.add(index.reconstruct_n(i0, i1 - i0))
            else:
                part = faiss.clone_index(index)
                part.reset()
                index.copy_subset_to(part, faiss.InvertedLists.SUBSET_TYPE_ID_MOD, n, i)
            shards.add_shard(self.index_cpu_to_gpu(res, i, part, co))
        return shards

    def index_gpu_to_cpu(self, gpu_index):
        index = faiss.downcast_index(gpu_index)
        if isinstance(index, faiss.IndexShards):
            out = self.index_gpu_to_cpu(index.at(0))
            for i in range(1, index.count()):
                part = self.index_gpu_to_cpu(index.at(i))
                if isinstance(out, faiss.IndexFlat) and index.successive_ids:
                    out.add(part.reconstruct_n(0, part.ntotal))
                elif isinstance(out, faiss.IndexIVF):
                    out.merge_from(part, out.ntotal if index.successive_ids else 0)
                else:
                    raise RuntimeError('merging not implemented for this type of class')
            return out
        if isinstance(index, faiss.IndexReplicas):
            return self.index_gpu_to_cpu(index.at(0))
        if isinstance(index, faiss.IndexScalarQuantizer):  # a GpuIndexFlat with fp16 storage
            cpu = faiss.IndexFlat(index.d, index.metric_type)
            cpu.add(index.reconstruct_n(0, index.ntotal))
            return cpu
        return faiss.clone_index(index)


@pytest.fixture(params=[1, 2, 3], ids=['1gpu', '2gpus', '3gpus'])
def fake_gpus(request, monkeypatch):
    from aoissl_mm.models.retrieval import faiss_index, search_index
    fake = _FakeFaissGpu(request.param)
    monkeypatch.setattr(faiss_index, 'faiss', fake)
    monkeypatch.setattr(search_index, 'faiss', fake)
    monkeypatch.setattr(faiss_index, '_GPU_RESOURCES', [])
    return request.param


@pytest.mark.parametrize('fp16', [False, True])
def test_flat_on_gpus_grows_batch_by_batch(fake_gpus, fp16, tmp_path):
    """A memory adds keys in many batches: every GPU placement must accept that."""
    keys, queries = _data()
    index = build_search_index(24, fp16=fp16)  # device='auto': every GPU faiss sees
    assert index.gpus == faiss_gpu_count() == fake_gpus
    for start in range(0, 300, 70):
        index.add(keys[start:start + 70])
    assert index.ntotal == 300
    sims, ids = index.search(queries, 4)
    ref_s, ref_i = _brute_force(keys, queries, 4)
    assert np.allclose(sims.numpy(), np.minimum(ref_s, 1), atol=2e-3 if fp16 else 1e-5)
    if not fp16:
        assert np.array_equal(ids.numpy(), ref_i)
        assert ids[0].tolist() == [7, 40, 41, 90]  # ties across shards: lowest ids first
    # the file is written from a CPU copy in id order, and read back onto the GPUs
    index.write(str(tmp_path / 'flat.faiss'))
    cpu = faiss.read_index(str(tmp_path / 'flat.faiss'))
    expected = faiss.IndexScalarQuantizer if fp16 else faiss.IndexFlat
    assert isinstance(cpu, expected) and cpu.ntotal == 300
    assert np.allclose(cpu.reconstruct_n(0, 300), keys, atol=1e-3 if fp16 else 0)
    again = read_search_index(str(tmp_path / 'flat.faiss'))
    assert again.gpus == fake_gpus and again.fp16 == fp16
    again.add(keys[:5])  # duplicates of ids 0-4, numbered 300-304
    grown = np.concatenate([keys, keys[:5]])
    assert again.ntotal == 305
    ref_s, ref_i = _brute_force(grown, queries, 4)
    sims, ids = again.search(queries, 4)
    assert np.allclose(sims.numpy(), np.minimum(ref_s, 1), atol=2e-3 if fp16 else 1e-5)
    if not fp16:
        assert np.array_equal(ids.numpy(), ref_i)
        assert ids[1].tolist()[:2] == [3, 303]


def test_ivf_on_gpus_grows_and_sets_nprobe_on_every_shard(fake_gpus, tmp_path):
    keys, queries = _data()
    index = build_search_index(24, index_type='ivf', nlist=6, nprobe=2)
    index.train(keys)
    for start in range(0, 300, 70):
        index.add(keys[start:start + 70])
    inner = faiss.downcast_index(index._index)
    shards = ([faiss.downcast_index(inner.at(i)) for i in range(inner.count())]
              if fake_gpus > 1 else [inner])
    assert len(shards) == fake_gpus and sum(s.ntotal for s in shards) == 300
    assert all(s.nprobe == 2 for s in shards)
    index.nprobe = 6  # every list: the exact answer
    assert all(s.nprobe == 6 for s in shards)
    sims, ids = index.search(queries, 4)
    ref_s, ref_i = _brute_force(keys, queries, 4)
    assert np.array_equal(ids.numpy(), ref_i)
    assert np.allclose(sims.numpy(), np.minimum(ref_s, 1), atol=1e-5)
    index.write(str(tmp_path / 'ivf.faiss'))
    cpu = read_search_index(str(tmp_path / 'ivf.faiss'), device='cpu', nprobe=6)
    assert cpu.gpus == 0 and cpu.ntotal == 300
    assert np.array_equal(cpu.search(queries, 4)[1].numpy(), ref_i)
