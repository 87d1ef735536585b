"""The retrieval memory (AOI-SSL spec §8.1, Eq. 4): L2-normalised keys + bit-packed values.

Entry ``i`` is a key (an encoder token, or an image embedding) and a value: the
raw binary mask of the token's p x p pixels (or of the whole image), P units
x C classes, stored bit-packed (:mod:`.bitpack`). Ids are global insertion
order. With ``shard_size`` the entries are split into shards of at most that
many, each with its own index and values file; a search merges the per-shard
top-k by (-similarity, id), so the result equals the unsharded one for exact
indexes.

On disk (:meth:`PatchMemory.save`), a directory::

    memory.json           format version, sizes, index options, shards (with each
                          file's SHA-256), metadata
    index_00000.faiss     faiss.write_index of shard 0's keys
    values_00000.npy      (count, ceil(P*C/8)) uint8 packed values of shard 0
    ...

No pickle anywhere; values are memory-mapped on load; every file is checked
against its SHA-256 on load unless ``verify=False``.
"""
import json
import math
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .bitpack import pack_bits, packed_size, unpack_bits
from .index_base import ArrayLike, SearchIndex, as_float32_rows, sort_results
from .patch_memory_io import (
    empty_memory_error,
    load_memory,
    verify_memory_files,
    write_memory_dir,
)

__all__ = ['PatchMemory']


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12).astype(np.float32)


def _jsonable(value: object, name: str) -> object:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise ValueError(f'{name} must be JSON-serialisable: {err}') from err


class _Shard:
    """One index plus its packed values: ``base`` (loaded, maybe memory-mapped) + new rows."""

    def __init__(self, index: SearchIndex, nbytes: int, base: Optional[np.ndarray] = None) -> None:
        self.index, self.nbytes, self.base = index, nbytes, base
        self.read_only = False  # a memory-mapped index: new entries go to a new shard
        self.extra: List[np.ndarray] = []
        self.pending: List[np.ndarray] = []  # keys waiting for the index to be trained
        self.count = 0 if base is None else int(base.shape[0])

    def append(self, keys: np.ndarray, packed: np.ndarray) -> None:
        if self.index.train_needed:
            self.pending.append(keys)
        else:
            self.index.add(keys)
        self.extra.append(packed)
        self.count += keys.shape[0]

    def finalize(self) -> None:
        if self.pending:
            keys = np.concatenate(self.pending)
            self.index.train(keys)
            self.index.add(keys)
            self.pending = []

    def _extra(self) -> np.ndarray:
        if len(self.extra) != 1:
            self.extra = [np.concatenate(self.extra) if self.extra else
                          np.empty((0, self.nbytes), np.uint8)]
        return self.extra[0]

    def rows(self, local: np.ndarray) -> np.ndarray:
        n0 = 0 if self.base is None else self.base.shape[0]
        out = np.empty((local.shape[0], self.nbytes), np.uint8)
        old = local < n0
        if old.any():
            out[old] = self.base[local[old]]
        if not old.all():
            out[~old] = self._extra()[local[~old] - n0]
        return out

    def blocks(self, rows: int = 1 << 20):
        """The packed values in order, in blocks of at most ``rows`` rows."""
        for array in ([] if self.base is None else [self.base]) + self.extra:
            for start in range(0, array.shape[0], rows):
                yield array[start:start + rows]


class PatchMemory:
    """Keys (L2-normalised) + bit-packed binary values + JSON metadata.

    Args:
        key_dim (int): Key dimension D.
        value_shape (Tuple[int, int]): (P, C) of one value: P = p*p units per
            patch entry (or H*W per image entry), C classes.
        index_type (str): ``'flat'`` (exact), ``'ivf'`` or ``'ivfpq'``
            (:func:`~.search_index.build_search_index`).
        fp16_keys (bool): Store keys as float16.
        nlist (int, optional): IVF lists per shard (default ~4*sqrt(N)).
        nprobe (int): IVF lists visited per query.
        pq_m (int, optional): PQ sub-quantizers for ``'ivfpq'``.
        device (str): ``'auto'`` (GPU when faiss / torch has one), ``'cpu'``
            or ``'cuda'``.
        shard_size (int, optional): At most this many entries per shard.
        metadata (dict, optional): JSON-serialisable user metadata (backbone,
            checkpoint digest, patch size, classes, level, ...).
        backend (str): ``'auto'``, ``'faiss'`` or ``'torch'``.
    """

    def __init__(self, key_dim: int, value_shape: Tuple[int, int], index_type: str = 'flat',
                 fp16_keys: bool = False, nlist: Optional[int] = None, nprobe: int = 16,
                 pq_m: Optional[int] = None, device: str = 'auto',
                 shard_size: Optional[int] = None, metadata: Optional[dict] = None,
                 backend: str = 'auto') -> None:
        if len(value_shape) != 2 or min(int(v) for v in value_shape) < 1:
            raise ValueError(f'value_shape must be (P, C) with P, C >= 1, got {value_shape}')
        if shard_size is not None and int(shard_size) < 1:
            raise ValueError(f'shard_size must be >= 1 or None, got {shard_size}')
        self.key_dim = int(key_dim)
        self.value_shape = (int(value_shape[0]), int(value_shape[1]))
        self.index_options = dict(index_type=index_type, fp16=bool(fp16_keys), nlist=nlist,
                                  nprobe=int(nprobe), pq_m=pq_m, device=device, backend=backend)
        self.shard_size = None if shard_size is None else int(shard_size)
        self.metadata: Dict = _jsonable(dict(metadata or {}), 'metadata')
        self._shards: List[_Shard] = []
        self._mmap_dir: Optional[str] = None  # values memory-mapped from this saved memory
        self.source: Optional[str] = None  # the directory last loaded from or saved to
        self._unverified: Optional[str] = None  # loaded with verify=False from this directory
        self._new_index(probe=True)  # validate the options now

    # ------------------------------------------------------------------ basics
    @property
    def nbytes(self) -> int:
        """Bytes of one packed value."""
        return packed_size(self.value_shape)

    def _new_index(self, probe: bool = False) -> SearchIndex:
        """A new empty shard index; ``probe``: a CPU one, only to check options / read sizes."""
        from .search_index import build_search_index, check_device
        options = dict(self.index_options)
        if probe:
            check_device(options['device'], options['backend'])
            options['device'] = 'cpu'
        return build_search_index(self.key_dim, **options)

    def __len__(self) -> int:
        return sum(s.count for s in self._shards)

    def describe(self) -> str:
        """``'N entries'``, plus ``', saved in DIR'`` for a memory loaded from / saved to disk."""
        where = f', saved in {self.source}' if self.source else ''
        return f'{len(self)} entries{where}'

    @property
    def nprobe(self) -> int:
        """IVF lists visited per query (settable)."""
        return self.index_options['nprobe']

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self.index_options['nprobe'] = int(value)
        for shard in self._shards:
            if hasattr(shard.index, 'nprobe'):
                shard.index.nprobe = int(value)

    def bytes_per_entry(self) -> float:
        """Bytes per entry as stored: the key in the index plus the packed value."""
        index = self._shards[0].index if self._shards else self._new_index(probe=True)
        return index.bytes_per_key() + self.nbytes

    def info(self) -> dict:
        """Sizes, options and metadata, for logs."""
        return dict(count=len(self), shard_counts=[s.count for s in self._shards],
                    key_dim=self.key_dim, value_shape=list(self.value_shape),
                    index_type=self.index_options['index_type'],
                    fp16_keys=self.index_options['fp16'], nprobe=self.nprobe,
                    nlist=[getattr(s.index, 'nlist', None) for s in self._shards],
                    pq_m=self.index_options['pq_m'], shard_size=self.shard_size,
                    backend=type(self._new_index(probe=True) if not self._shards else
                                 self._shards[0].index).__name__,
                    bytes_per_entry=self.bytes_per_entry(),
                    approx_bytes=int(math.ceil(self.bytes_per_entry() * len(self))),
                    metadata=self.metadata)

    # ------------------------------------------------------------------ filling
    def add(self, keys: ArrayLike, values: ArrayLike) -> None:
        """Append entries; they get ids ``len(self) .. len(self) + N - 1``.

        Args:
            keys (np.ndarray | Tensor): (N, key_dim) float keys; L2-normalised
                here.
            values (np.ndarray | Tensor): (N, P, C) {0, 1} values.

        Raises:
            ValueError: Shapes other than the ones named, non-binary values or
                non-finite keys.
        """
        k = as_float32_rows(keys, self.key_dim, 'keys')
        shape = tuple(values.shape)
        if shape != (k.shape[0], ) + self.value_shape:
            raise ValueError(f'values must be (N, P, C) = ({k.shape[0]}, {self.value_shape[0]}, '
                             f'{self.value_shape[1]}) for {k.shape[0]} keys, got {shape}')
        k, packed = _normalise(k), pack_bits(values)
        pos = 0
        while pos < k.shape[0]:
            last = self._shards[-1] if self._shards else None
            if last is None or last.read_only or (self.shard_size is not None
                                                  and last.count >= self.shard_size):
                last = _Shard(self._new_index(), self.nbytes)
                self._shards.append(last)
            room = k.shape[0] - pos if self.shard_size is None else self.shard_size - last.count
            take = min(room, k.shape[0] - pos)
            last.append(k[pos:pos + take], packed[pos:pos + take])
            pos += take

    def finalize(self) -> None:
        """Train untrained (IVF) shard indexes on their buffered keys and fill them."""
        for shard in self._shards:
            shard.finalize()

    # ------------------------------------------------------------------ search
    def search(self, queries: ArrayLike, k: int) -> Tuple[Tensor, Tensor]:
        """The k entries whose keys are most similar (cosine) to each query.

        Args:
            queries (np.ndarray | Tensor): (M, key_dim); L2-normalised here.
            k (int): Neighbours, 1 <= k <= len(self).

        Returns:
            Tuple[Tensor, Tensor]: (M, k) float32 similarities and (M, k) int64
            global ids, sorted by (-similarity, id).
        """
        q = _normalise(as_float32_rows(queries, self.key_dim, 'queries'))
        if len(self) == 0:
            raise ValueError('cannot search an empty memory (no entries added)')
        if not 1 <= int(k) <= len(self):
            raise ValueError(f'k={k} neighbours asked, but the memory holds {self.describe()}')
        self.finalize()
        sims, ids, offset = [], [], 0
        for shard in self._shards:
            s, i = shard.index.search(q, min(int(k), shard.count), clamp=False)
            sims.append(s.numpy())
            ids.append(np.where(i.numpy() >= 0, i.numpy() + offset, -1))
            offset += shard.count
        s, i = sort_results(np.concatenate(sims, 1), np.concatenate(ids, 1))
        s = np.minimum(s[:, :k], 1.0)
        return torch.from_numpy(s), torch.from_numpy(np.ascontiguousarray(i[:, :k]))

    def gather_values(self, ids: ArrayLike) -> Tensor:
        """Unpacked values of the given entries; id -1 (a missing neighbour) gives zeros.

        Args:
            ids (np.ndarray | Tensor): Integer ids of any shape S.

        Returns:
            Tensor: float32 (*S, P, C).
        """
        flat = torch.as_tensor(ids).cpu().numpy().astype(np.int64).reshape(-1)
        if flat.size and (flat.max() >= len(self) or flat.min() < -1):
            raise ValueError(f'ids must be in [0, {len(self)}) (or -1), got range '
                             f'[{flat.min()}, {flat.max()}]')
        packed = np.zeros((flat.shape[0], self.nbytes), np.uint8)
        offset = 0
        for shard in self._shards:
            sel = np.nonzero((flat >= offset) & (flat < offset + shard.count))[0]
            if sel.size:
                packed[sel] = shard.rows(flat[sel] - offset)
            offset += shard.count
        values = torch.from_numpy(unpack_bits(packed, self.value_shape)).float()
        return values.reshape(tuple(np.shape(ids)) + self.value_shape)

    # ------------------------------------------------------------------ files
    def save(self, directory: str) -> None:
        """Write the memory to ``directory`` atomically (see the module docstring).

        The files go to a temporary sibling directory that replaces
        ``directory`` only once complete; an existing memory there survives
        any failure before that. A directory that is not a saved memory is
        never replaced (ValueError), and neither is an empty memory saved
        (ValueError naming ``directory``). A memory loaded with
        ``verify=False`` has its source files verified first, so that a
        corrupted file is never re-saved under new checksums.
        """
        if len(self) == 0:  # before finalize(): an IVF index cannot be trained on nothing
            raise empty_memory_error(directory)
        if self._unverified is not None:
            if not osp.isdir(self._unverified):
                raise FileNotFoundError(
                    f'this memory was loaded with verify=False from {self._unverified}, which no '
                    f'longer exists, so its data cannot be checked before it is saved to '
                    f'{directory}; load a verified copy (verify=True) and save that')
            verify_memory_files(self._unverified)
            self._unverified = None
        self.finalize()
        shards = [(s.index, s.blocks(), s.count) for s in self._shards]
        info = dict(key_dim=self.key_dim, value_shape=list(self.value_shape),
                    value_bytes=self.nbytes, count=len(self), shard_size=self.shard_size,
                    index_type=self.index_options['index_type'],
                    fp16_keys=self.index_options['fp16'], nlist=self.index_options['nlist'],
                    nprobe=self.nprobe, pq_m=self.index_options['pq_m'],
                    metadata=self.metadata)
        write_memory_dir(directory, shards, info, self.nbytes)
        if self._mmap_dir is not None:  # the old files are gone: map the new ones
            for i, shard in enumerate(self._shards):
                shard.base = np.load(osp.join(directory, f'values_{i:05d}.npy'), mmap_mode='r')
                shard.extra = []
            self._mmap_dir = osp.abspath(directory)
        self.source = osp.abspath(directory)

    @classmethod
    def load(cls, directory: str, expected: Optional[dict] = None, mmap: bool = True,
             device: str = 'auto', backend: str = 'auto',
             mmap_keys: bool = False, verify: bool = True) -> 'PatchMemory':
        """Load a memory saved by :meth:`save`.

        Args:
            directory (str): The memory directory.
            expected (dict, optional): Metadata that must match: each key is
                looked up in the saved user metadata, then among the saved
                fields (``key_dim``, ``value_shape``, ...).
            mmap (bool): Memory-map the values (read-only) instead of reading
                them into RAM.
            device (str): Index device, as in the constructor.
            backend (str): ``'auto'``, ``'faiss'`` or ``'torch'`` (flat only).
            mmap_keys (bool): Also memory-map every shard's index (faiss on
                CPU): a memory larger than RAM can then be searched, the page
                cache holding what the searches touch. Loaded shards become
                read-only; :meth:`add` starts a new shard. Defaults to False.
            verify (bool): Check every index and values file against the
                SHA-256 recorded in ``memory.json`` before reading it
                (streamed; about 1 GB/s on one core). False skips it for a
                memory too large to read through at every load; sizes and
                counts are still checked, and the files are verified before
                such a memory is saved again. Defaults to True.

        Raises:
            FileNotFoundError: A missing directory, ``memory.json``, index or
                values file (named).
            ValueError: A metadata mismatch (key, saved and expected values,
                directory), an empty memory (directory), or a corrupted /
                truncated / inconsistent file (named, with the cause).
        """
        info, shards = load_memory(directory, expected, mmap, device, backend, mmap_keys,
                                   verify)
        memory = cls(info['key_dim'], tuple(info['value_shape']), info['index_type'],
                     info['fp16_keys'], info['nlist'], info['nprobe'], info['pq_m'], device,
                     info['shard_size'], info['metadata'], backend)
        memory._shards = [_Shard(index, memory.nbytes, values) for index, values in shards]
        for shard in memory._shards:
            shard.read_only = bool(mmap_keys)
        memory._mmap_dir = osp.abspath(directory) if mmap else None
        memory.source = osp.abspath(directory)
        memory._unverified = None if verify else osp.abspath(directory)
        return memory

