"""The search-index interface and the result order shared by every backend.

Results: float32 similarities and int64 ids, each row sorted by
(-similarity, id) and then the similarities clamped to ``<= 1`` (a cosine
above 1 is float rounding; sorting first keeps the ranking of unnormalised
queries). Identical keys tie and the one added first (lower id) wins. At
the k-th place too: no backend keeps the lowest ids among tied keys itself
(faiss's heaps do not), so a row whose k-th and (k+1)-th candidates tie is
searched once more with ``k + TIE_SEARCH_EXTRA`` candidates (at most
:data:`TIE_SEARCH_LIMIT`, faiss GPU's largest k); ties are resolved exactly
unless more than that many tied keys lie past the k-th place (e.g. thousands
of identical black patches), where the lower ids among those candidates win.
Missing neighbours of approximate indexes have id -1 and similarity -inf.
"""
from typing import Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

__all__ = [
    'SearchIndex', 'as_float32_rows', 'sort_results', 'TIE_SEARCH_LIMIT', 'TIE_SEARCH_EXTRA'
]

TIE_SEARCH_LIMIT = 2048  # also faiss GPU's largest k
TIE_SEARCH_EXTRA = 256
ArrayLike = Union[np.ndarray, Tensor]


def as_float32_rows(x: ArrayLike, dim: int, name: str) -> np.ndarray:
    """(N, dim) float32 C-contiguous numpy copy-or-view of ``x``; non-finite values rejected."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().float().numpy()
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f'{name} must be (N, {dim}), got shape {x.shape}')
    if not np.isfinite(x).all():
        raise ValueError(f'{name} contain NaN or infinite values')
    return x


def sort_results(sims: np.ndarray, ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Sort each row by (-similarity, id); missing ids (-1) last, with similarity -inf."""
    sims = np.where(ids < 0, -np.inf, sims).astype(np.float32)
    order = np.lexsort((ids, -sims), axis=1)
    return np.take_along_axis(sims, order, 1), np.take_along_axis(ids, order, 1)


class SearchIndex:
    """Interface of the search backends (see the module docstring).

    Attributes:
        dim (int): Key dimension.
        index_type (str): ``'flat'``, ``'ivf'`` or ``'ivfpq'``.
        fp16 (bool): Keys stored as float16.
    """

    dim: int
    index_type: str = 'flat'
    fp16: bool = False

    @property
    def ntotal(self) -> int:
        """Number of keys added."""
        raise NotImplementedError

    @property
    def train_needed(self) -> bool:
        """Whether :meth:`train` must run before :meth:`add`."""
        return False

    def train(self, keys: ArrayLike) -> None:
        """Train the index on (N, dim) keys (a no-op for flat indexes)."""

    def add(self, keys: ArrayLike) -> None:
        """Append (N, dim) keys; they get ids ``ntotal .. ntotal + N - 1``."""
        raise NotImplementedError

    def bytes_per_key(self) -> float:
        """Bytes one key takes in the index (codes plus stored ids)."""
        raise NotImplementedError

    def write(self, path: str) -> None:
        """Write the index to ``path`` (a faiss index file)."""
        raise NotImplementedError

    @classmethod
    def read(cls, path: str, device: str = 'auto', backend: str = 'auto',
             nprobe: Optional[int] = None) -> 'SearchIndex':
        """Read an index file; see :func:`read_search_index`."""
        from .search_index import read_search_index
        return read_search_index(path, device=device, backend=backend, nprobe=nprobe)

    def _raw_search(self, queries: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _max_k(self) -> int:
        return self.ntotal

    def search(self, queries: ArrayLike, k: int, clamp: bool = True) -> Tuple[Tensor, Tensor]:
        """The k keys of largest inner product with each query.

        Args:
            queries (np.ndarray | Tensor): (M, dim) queries (not normalised
                here).
            k (int): Neighbours per query, 1 <= k <= ntotal.
            clamp (bool): Clamp the similarities to <= 1 (after sorting).

        Returns:
            Tuple[Tensor, Tensor]: (M, k) float32 similarities (<= 1) and
            (M, k) int64 ids, sorted by (-similarity, id).

        Raises:
            ValueError: An empty index, k outside [1, ntotal], bad queries.
        """
        q = as_float32_rows(queries, self.dim, 'queries')
        if self.ntotal == 0:
            raise ValueError('cannot search an empty index (no keys added)')
        if self.train_needed:
            raise ValueError('the index must be trained and filled before searching')
        k = int(k)
        if not 1 <= k <= self.ntotal:
            raise ValueError(f'k={k} neighbours asked, but the index holds {self.ntotal} keys '
                             f'(k must be in [1, {self.ntotal}])')
        if k > self._max_k():
            raise ValueError(f'k={k} exceeds the largest k {self._max_k()} of this backend')
        if q.shape[0] == 0:
            return torch.empty(0, k), torch.empty(0, k, dtype=torch.int64)
        limit = max(k, min(self.ntotal, k + TIE_SEARCH_EXTRA, TIE_SEARCH_LIMIT, self._max_k()))
        kk = min(k + 1, limit)
        sims, ids = sort_results(*self._raw_search(q, kk))
        out_s, out_i = sims[:, :k].copy(), ids[:, :k].copy()
        if kk > k:  # a tie at the k-th place may hide lower ids past the candidates
            rows = np.nonzero((sims[:, k - 1] == sims[:, k]) & (ids[:, k] >= 0))[0]
            if rows.size and limit > kk:
                sims, ids = sort_results(*self._raw_search(q[rows], limit))
                out_s[rows], out_i[rows] = sims[:, :k], ids[:, :k]
        if clamp:
            np.minimum(out_s, 1.0, out=out_s)
        return torch.from_numpy(out_s), torch.from_numpy(out_i.astype(np.int64))


