"""The faiss backend: flat / IVF / IVF-PQ inner-product indexes on GPU or CPU.

See :func:`~.search_index.build_search_index` and anchors §4.4.
"""
import math
import warnings
from typing import Optional, Tuple

import numpy as np

from .index_base import TIE_SEARCH_LIMIT, ArrayLike, SearchIndex, as_float32_rows

try:
    import faiss
except ImportError:  # pragma: no cover - faiss-cpu is a dependency
    faiss = None

__all__ = ['FaissIndex', 'faiss_available', 'faiss_gpu_count', 'resolve_faiss_gpus']


def faiss_available() -> bool:
    """Whether faiss is importable."""
    return faiss is not None


def faiss_gpu_count() -> int:
    """GPUs faiss can use: 0 without faiss GPU support or without CUDA."""
    if faiss is None or not hasattr(faiss, 'StandardGpuResources'):
        return 0
    try:
        return int(faiss.get_num_gpus())
    except Exception:  # pragma: no cover - broken CUDA driver
        return 0


_GPU_RESOURCES = []


def _gpu_resources(count: int) -> list:
    """One ``StandardGpuResources`` per GPU, shared by every index (each reserves memory)."""
    while len(_GPU_RESOURCES) < count:
        _GPU_RESOURCES.append(faiss.StandardGpuResources())
    return _GPU_RESOURCES[:count]


def resolve_faiss_gpus(device: str) -> int:
    if device not in ('auto', 'cpu', 'cuda', 'gpu'):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == 'cpu':
        return 0
    gpus = faiss_gpu_count()
    if device in ('cuda', 'gpu') and gpus == 0:
        raise ValueError(f'device={device!r} asked, but faiss has no GPU (install faiss-gpu, '
                         f"or use device='cpu' / 'auto')")
    return gpus


class FaissIndex(SearchIndex):
    """A faiss inner-product index; see :func:`build_search_index` for the args.

    IVF indexes are created at :meth:`train` time (the default ``nlist`` is
    ``4 * sqrt(N)``, at most ``N / 39`` so that k-means has 39 points per
    list, and never more than ``N``) and trained on the CPU, then moved to
    the GPUs.

    On several GPUs the keys are sharded. IVF indexes use faiss's own
    sharding (``index_cpu_to_gpu_multiple`` with ``shard=True``: an
    ``IndexShards`` that numbers added keys itself). A flat index does not:
    faiss shards it with ``successive_ids``, which accepts a single ``add``
    into an empty index, while a memory grows batch by batch. So each GPU
    holds an ``IndexIDMap`` around its ``GpuIndexFlat``, under an
    ``IndexShards`` without successive ids, and :meth:`cpu_index` puts the
    keys back in id order itself. Tested against an emulation of faiss-gpu's
    cloner rules on CPU indexes (``tests/.../test_search_index.py``); not yet
    run on a GPU machine.
    """

    def __init__(self, dim: int, index_type: str = 'flat', fp16: bool = False,
                 nlist: Optional[int] = None, nprobe: int = 16, pq_m: Optional[int] = None,
                 device: str = 'auto', cpu_index: Optional['faiss.Index'] = None) -> None:
        if faiss is None:
            raise ImportError("faiss is not installed; use backend='torch' (flat only)")
        self.dim, self.index_type, self.fp16 = int(dim), index_type, bool(fp16)
        self.nlist, self._nprobe, self.pq_m = nlist, int(nprobe), pq_m
        self.gpus = resolve_faiss_gpus(device)
        self._index = None
        if cpu_index is not None:
            self._place(cpu_index)
        elif index_type == 'flat':
            self._place(faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16,
                                                   faiss.METRIC_INNER_PRODUCT)
                        if fp16 else faiss.IndexFlatIP(dim))

    # ---------------------------------------------------------------- placement
    def _place(self, cpu_index: 'faiss.Index') -> None:
        if self.gpus == 0:
            self._index = cpu_index
        elif self.index_type == 'flat' and self.gpus > 1:
            self._index = self._flat_gpu_shards(cpu_index)
        elif isinstance(cpu_index, faiss.IndexScalarQuantizer):  # GPU has no flat SQ: fp16 flat
            self._index = self._to_gpu(faiss.IndexFlatIP(self.dim))
            for start in range(0, cpu_index.ntotal, 1 << 20):
                n = min(1 << 20, cpu_index.ntotal - start)
                self._index.add(cpu_index.reconstruct_n(start, n))
        else:
            self._index = self._to_gpu(cpu_index)
        self.nprobe = self._nprobe

    def _to_gpu(self, cpu_index: 'faiss.Index') -> 'faiss.Index':
        options = faiss.GpuMultipleClonerOptions()
        options.shard = True
        options.useFloat16 = self.fp16
        return faiss.index_cpu_to_gpu_multiple_py(_gpu_resources(self.gpus), cpu_index,
                                                  co=options)

    def _flat_gpu_shards(self, cpu_index: 'faiss.Index') -> 'faiss.Index':
        """Flat keys spread over the GPUs, growable by ``add`` (see the class docstring)."""
        shards = faiss.IndexShards(self.dim, True, False)  # threaded; ids given by ``add``
        options = faiss.GpuClonerOptions()
        options.useFloat16 = self.fp16
        for device, resources in enumerate(_gpu_resources(self.gpus)):
            gpu = faiss.index_cpu_to_gpu(resources, device, faiss.IndexFlatIP(self.dim), options)
            shards.add_shard(faiss.IndexIDMap(gpu))
        for start in range(0, cpu_index.ntotal, 1 << 20):
            shards.add(cpu_index.reconstruct_n(start, min(1 << 20, cpu_index.ntotal - start)))
        return shards

    def _flat_keys_from_shards(self) -> np.ndarray:
        """(ntotal, dim) float32 keys of :meth:`_flat_gpu_shards`, in id order."""
        keys = np.empty((self.ntotal, self.dim), np.float32)
        for i in range(self._index.count()):
            shard = faiss.downcast_index(self._index.at(i))
            if shard.ntotal:
                ids = faiss.vector_to_array(shard.id_map)
                keys[ids] = shard.index.reconstruct_n(0, shard.ntotal)
        return keys

    def cpu_index(self) -> 'faiss.Index':
        """A CPU copy (the index itself on CPU); fp16 flat as a QT_fp16 scalar quantizer."""
        if self.gpus == 0:
            return self._index
        if self.index_type == 'flat' and self.gpus > 1:
            cpu = faiss.IndexFlatIP(self.dim)
            cpu.add(self._flat_keys_from_shards())
        else:
            cpu = faiss.index_gpu_to_cpu(self._index)
        if self.index_type == 'flat' and self.fp16:
            sq = faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_fp16,
                                            faiss.METRIC_INNER_PRODUCT)
            for start in range(0, cpu.ntotal, 1 << 20):
                sq.add(cpu.reconstruct_n(start, min(1 << 20, cpu.ntotal - start)))
            cpu = sq
        return cpu

    @property
    def nprobe(self) -> int:
        """IVF lists visited per query (clamped to ``nlist``)."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._nprobe = int(value)
        if self._index is None or self.index_type == 'flat':
            return
        value = max(1, min(self._nprobe, int(self.nlist)))
        space = faiss.GpuParameterSpace() if self.gpus else faiss.ParameterSpace()
        space.set_index_parameter(self._index, 'nprobe', value)

    # ---------------------------------------------------------------- interface
    @property
    def ntotal(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def train_needed(self) -> bool:
        return self._index is None or not self._index.is_trained

    def train(self, keys: ArrayLike) -> None:
        if not self.train_needed:
            return
        x = as_float32_rows(keys, self.dim, 'training keys')
        n = x.shape[0]
        if n == 0:
            raise ValueError(f'{self.index_type} index: no training keys')
        nlist = self.nlist or max(1, min(int(round(4 * math.sqrt(n))), n // 39))
        if nlist > n:
            warnings.warn(f'nlist={nlist} > {n} training keys; using nlist={n}')
            nlist = n
        self.nlist = nlist
        quantizer = faiss.IndexFlatIP(self.dim)
        if self.index_type == 'ivf' and self.fp16:
            index = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist,
                                                  faiss.ScalarQuantizer.QT_fp16,
                                                  faiss.METRIC_INNER_PRODUCT)
        elif self.index_type == 'ivf':
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            # 8-bit codes need 256 points per sub-quantizer; small shards get fewer bits
            nbits = max(1, min(8, int(math.log2(max(n, 2)))))
            index = faiss.IndexIVFPQ(quantizer, self.dim, nlist, self.pq_m, nbits,
                                     faiss.METRIC_INNER_PRODUCT)
        index.cp.spherical = True  # unit keys: spherical k-means centroids
        try:
            index.train(x)
        except RuntimeError as err:
            raise ValueError(f'training the {self.index_type} index on {n} keys failed: '
                             f'{err}') from err
        self._place(index)  # faiss's Python layer keeps ``quantizer`` alive with ``index``

    def add(self, keys: ArrayLike) -> None:
        if self.train_needed:
            raise ValueError(f'the {self.index_type} index must be trained before add')
        x = as_float32_rows(keys, self.dim, 'keys')
        if x.shape[0]:
            self._index.add(x)

    def bytes_per_key(self) -> float:
        if self.index_type == 'flat':
            return (2.0 if self.fp16 else 4.0) * self.dim
        id_bytes = 8.0  # IVF lists store the int64 id next to each code
        if self.index_type == 'ivf':
            return (2.0 if self.fp16 else 4.0) * self.dim + id_bytes
        if self._index is not None and self.gpus == 0:
            return float(faiss.extract_index_ivf(self._index).code_size) + id_bytes
        return float(self.pq_m) + id_bytes

    def write(self, path: str) -> None:
        if self.train_needed:
            raise ValueError(f'cannot write an untrained {self.index_type} index to {path}')
        faiss.write_index(self.cpu_index(), path)

    def _max_k(self) -> int:
        return min(self.ntotal, TIE_SEARCH_LIMIT) if self.gpus else self.ntotal

    def _raw_search(self, queries: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
        return self._index.search(queries, k)
