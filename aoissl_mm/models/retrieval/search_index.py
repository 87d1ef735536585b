"""Inner-product k-NN search over memory keys: faiss (GPU or CPU) or pure torch.

:func:`build_search_index` returns one of two :class:`SearchIndex` backends
with the same interface (``train_needed``, ``train``, ``add``, ``search``,
``ntotal``, ``write``; :func:`read_search_index` / :meth:`SearchIndex.read`):

* :class:`FaissIndex` (anchors §4.4): ``'flat'`` = ``IndexFlatIP`` (exact);
  ``'flat'`` + fp16 = ``IndexScalarQuantizer`` QT_fp16 (on GPU a
  ``GpuIndexFlatIP`` with float16 storage); ``'ivf'`` = ``IndexIVFFlat``
  (``IndexIVFScalarQuantizer`` fp16 with ``fp16``); ``'ivfpq'`` =
  ``IndexIVFPQ``. With ``device='auto'`` the index lives on every GPU faiss
  sees (``index_cpu_to_all_gpus``, ``shard=True``), else on the CPU; files
  are always written from a CPU copy.
* :class:`TorchFlatIndex`: exact chunked ``q @ keys.T`` + ``topk``, used when
  faiss is not importable or ``backend='torch'``; it reads and writes the same
  flat files (:mod:`.faiss_io`).

Results, whatever the backend (:mod:`.index_base`): int64 ids and float32
similarities, each row sorted by (-similarity, id), the similarities then
clamped to ``<= 1``. Identical keys tie; the one added first (lower id) wins,
also at the k-th place (up to ``TIE_SEARCH_EXTRA`` = 256 further tied keys).
Approximate indexes may find fewer than k candidates: the missing ones have
id -1 and similarity -inf.
"""
import os
from typing import Optional

import numpy as np

from .faiss_index import (
    FaissIndex,
    faiss,
    faiss_available,
    faiss_gpu_count,
    resolve_faiss_gpus,
)
from .faiss_io import read_flat_index, read_fourcc
from .index_base import TIE_SEARCH_LIMIT, SearchIndex
from .torch_index import TorchFlatIndex

__all__ = [
    'faiss_available', 'faiss_gpu_count', 'SearchIndex', 'FaissIndex', 'TorchFlatIndex',
    'build_search_index', 'read_search_index', 'check_device', 'INDEX_TYPES', 'TIE_SEARCH_LIMIT'
]

INDEX_TYPES = ('flat', 'ivf', 'ivfpq')


def check_device(device: str, backend: str = 'auto') -> None:
    """Raise ValueError when ``device`` is unknown or asks for a GPU the backend lacks."""
    if backend == 'torch' or (backend == 'auto' and faiss is None):
        TorchFlatIndex(1, device=device)
    else:
        resolve_faiss_gpus(device)


def build_search_index(dim: int, index_type: str = 'flat', fp16: bool = False,
                       nlist: Optional[int] = None, nprobe: int = 16,
                       pq_m: Optional[int] = None, device: str = 'auto',
                       backend: str = 'auto') -> SearchIndex:
    """Build an empty inner-product index.

    Args:
        dim (int): Key dimension.
        index_type (str): ``'flat'`` (exact), ``'ivf'`` or ``'ivfpq'``.
        fp16 (bool): float16 keys (``'flat'`` and ``'ivf'``).
        nlist (int, optional): IVF lists; default ``~4 * sqrt(N)`` at train.
        nprobe (int): IVF lists visited per query.
        pq_m (int, optional): PQ sub-quantizers for ``'ivfpq'`` (must divide
            ``dim``); default the largest divisor of ``dim`` <= ``dim / 8``.
        device (str): ``'auto'`` (GPU when available), ``'cpu'`` or ``'cuda'``.
        backend (str): ``'auto'`` (faiss when importable), ``'faiss'`` or
            ``'torch'`` (flat only).

    Returns:
        SearchIndex: :class:`FaissIndex` or :class:`TorchFlatIndex`.
    """
    if index_type not in INDEX_TYPES:
        raise ValueError(f'index_type must be one of {INDEX_TYPES}, got {index_type!r}')
    if backend not in ('auto', 'faiss', 'torch'):
        raise ValueError(f"backend must be 'auto', 'faiss' or 'torch', got {backend!r}")
    if dim < 1:
        raise ValueError(f'dim must be >= 1, got {dim}')
    if nlist is not None and nlist < 1 or nprobe < 1:
        raise ValueError(f'nlist and nprobe must be >= 1, got nlist={nlist}, nprobe={nprobe}')
    if index_type == 'ivfpq':
        if fp16:
            raise ValueError("fp16 applies to 'flat' and 'ivf' keys ('ivfpq' stores PQ codes)")
        pq_m = pq_m or max(m for m in range(1, max(1, dim // 8) + 1) if dim % m == 0)
        if dim % pq_m:
            raise ValueError(f'pq_m={pq_m} must divide the key dimension {dim}')
    if backend == 'torch' or (backend == 'auto' and faiss is None):
        if index_type != 'flat':
            raise ValueError(f"index_type={index_type!r} needs faiss; the torch backend is "
                             f"'flat' only")
        return TorchFlatIndex(dim, fp16=fp16, device=device)
    return FaissIndex(dim, index_type, fp16, nlist, nprobe, pq_m, device)


def read_search_index(path: str, device: str = 'auto', backend: str = 'auto',
                      nprobe: Optional[int] = None, mmap: bool = False) -> SearchIndex:
    """Read an index file written by :meth:`SearchIndex.write` (or faiss).

    With ``mmap`` (faiss on CPU) the stored keys / inverted lists are
    memory-mapped read-only (``faiss.IO_FLAG_MMAP_IFC``) instead of read into
    RAM: the page cache holds what searches touch, so an index larger than RAM
    can be searched. Such an index cannot grow (faiss aborts the process on
    ``add``): :class:`PatchMemory` adds to a new shard instead.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: A truncated or corrupted file, another metric, or a type
            the backend cannot hold (each message names ``path``).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'search index file not found: {path}')
    if backend == 'torch' or (backend == 'auto' and faiss is None):
        keys, fp16 = read_flat_index(path)
        index = TorchFlatIndex(keys.shape[1], fp16=fp16, device=device)
        index.add(keys.astype(np.float32))
        return index
    try:
        cpu = faiss.read_index(path, faiss.IO_FLAG_MMAP_IFC) if mmap else faiss.read_index(path)
    except RuntimeError as err:
        raise ValueError(f'{path}: cannot read the faiss index (truncated or corrupted file): '
                         f'{str(err).strip().splitlines()[-1]}') from err
    if cpu.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ValueError(f'{path}: index metric {cpu.metric_type} is not inner product')
    kwargs = dict(nprobe=16 if nprobe is None else nprobe, device=device, cpu_index=cpu)
    if isinstance(cpu, faiss.IndexFlat):
        return FaissIndex(cpu.d, 'flat', False, **kwargs)
    if isinstance(cpu, faiss.IndexScalarQuantizer) and \
            cpu.sq.qtype == faiss.ScalarQuantizer.QT_fp16:
        return FaissIndex(cpu.d, 'flat', True, **kwargs)
    if isinstance(cpu, (faiss.IndexIVFFlat, faiss.IndexIVFScalarQuantizer, faiss.IndexIVFPQ)):
        fp16 = isinstance(cpu, faiss.IndexIVFScalarQuantizer)
        kind = 'ivfpq' if isinstance(cpu, faiss.IndexIVFPQ) else 'ivf'
        return FaissIndex(cpu.d, kind, fp16, nlist=cpu.nlist,
                          pq_m=cpu.pq.M if kind == 'ivfpq' else None, **kwargs)
    raise ValueError(f'{path}: unsupported faiss index type {type(cpu).__name__} '
                     f'(tag {read_fourcc(path)!r})')
