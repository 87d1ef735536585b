"""The pure-torch backend: exact chunked inner-product search.

Used when faiss is not importable or ``backend='torch'``; it reads and writes
the faiss flat files (:mod:`.faiss_io`), so a memory moves between backends.
"""
from typing import Tuple

import numpy as np
import torch
from torch import Tensor

from .faiss_io import write_flat_index
from .index_base import ArrayLike, SearchIndex, as_float32_rows

__all__ = ['TorchFlatIndex']


class TorchFlatIndex(SearchIndex):
    """Exact inner-product search with torch: chunked ``q @ keys.T`` + ``topk``.

    Args:
        dim (int): Key dimension.
        fp16 (bool): Store keys as float16 (similarities computed in float32).
        device (str): ``'auto'`` (CUDA when torch sees it), ``'cpu'`` or
            ``'cuda'``.
        chunk_size (int): Keys per matmul block.
    """

    def __init__(self, dim: int, fp16: bool = False, device: str = 'auto',
                 chunk_size: int = 65536) -> None:
        if device not in ('auto', 'cpu', 'cuda', 'gpu'):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        use_cuda = torch.cuda.is_available() and device != 'cpu'
        if device in ('cuda', 'gpu') and not torch.cuda.is_available():
            raise ValueError(f'device={device!r} asked, but torch sees no CUDA device')
        self.dim, self.fp16, self.chunk_size = int(dim), bool(fp16), int(chunk_size)
        self.device = torch.device('cuda' if use_cuda else 'cpu')
        self._dtype = torch.float16 if fp16 else torch.float32
        self._chunks = []
        self._keys = torch.empty(0, self.dim, dtype=self._dtype, device=self.device)

    def _all_keys(self) -> Tensor:
        if self._chunks:
            self._keys = torch.cat([self._keys] + self._chunks)
            self._chunks = []
        return self._keys

    @property
    def ntotal(self) -> int:
        return self._keys.shape[0] + sum(c.shape[0] for c in self._chunks)

    def add(self, keys: ArrayLike) -> None:
        x = as_float32_rows(keys, self.dim, 'keys')
        if x.shape[0]:
            self._chunks.append(torch.from_numpy(x).to(self.device, self._dtype))

    def bytes_per_key(self) -> float:
        return (2.0 if self.fp16 else 4.0) * self.dim

    def write(self, path: str) -> None:
        write_flat_index(path, self._all_keys().cpu().numpy())

    def _raw_search(self, queries: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
        keys = self._all_keys()
        q = torch.from_numpy(queries).to(self.device)
        best_s, best_i = None, None
        for start in range(0, keys.shape[0], self.chunk_size):
            block = keys[start:start + self.chunk_size].float()
            s, i = torch.topk(q @ block.T, min(k, block.shape[0]), dim=1)
            i = i + start
            if best_s is not None:
                merged = torch.cat([best_s, s], 1)
                s, j = torch.topk(merged, min(k, merged.shape[1]), dim=1)
                i = torch.gather(torch.cat([best_i, i], 1), 1, j)
            best_s, best_i = s, i
        return best_s.cpu().numpy(), best_i.cpu().numpy()
