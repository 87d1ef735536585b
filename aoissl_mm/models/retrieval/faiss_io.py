"""Read and write faiss flat inner-product index files without faiss.

The pure-torch search backend (:class:`~.search_index.TorchFlatIndex`) stores
its keys in the same files faiss writes, so a memory saved by either backend
loads in the other. Two layouts are handled, byte-identical to
``faiss.write_index`` (faiss 1.7-1.15, little-endian):

* ``IndexFlatIP`` (fourcc ``IxFI``): header, then ``uint64 n*d`` and the
  float32 keys;
* ``IndexScalarQuantizer`` QT_fp16, inner product (``IxSQ``): header, the
  quantizer fields (qtype 4, rangestat, rangestat_arg, d, code_size = 2d, an
  empty ``trained`` vector), then ``uint64 n*2d`` and the float16 keys.

The header is ``int32 d, int64 ntotal, int64 2**20, int64 2**20, uint8
is_trained, int32 metric`` (0 = inner product). Other index types need faiss.
"""
import os
import struct
from typing import Tuple

import numpy as np

__all__ = ['write_flat_index', 'read_flat_index', 'read_fourcc']

_FLAT_IP = b'IxFI'
_SQ = b'IxSQ'
_QT_FP16 = 4
_METRIC_IP = 0
_HEADER = struct.Struct('<iqqqBi')
_SQ_FIELDS = struct.Struct('<iifQQQ')


def read_fourcc(path: str) -> bytes:
    """The 4-byte type tag at the start of a faiss index file."""
    with open(path, 'rb') as f:
        return f.read(4)


def write_flat_index(path: str, keys: np.ndarray) -> None:
    """Write (N, D) keys as a faiss ``IndexFlatIP`` (float32 keys) or
    ``IndexScalarQuantizer`` fp16 inner-product file (float16 keys)."""
    if keys.ndim != 2 or keys.dtype not in (np.float32, np.float16):
        raise ValueError(f'keys must be (N, D) float32 or float16, got {keys.shape} {keys.dtype}')
    n, d = keys.shape
    header = _HEADER.pack(d, n, 1 << 20, 1 << 20, 1, _METRIC_IP)
    data = np.ascontiguousarray(keys).astype(keys.dtype.newbyteorder('<'), copy=False)
    with open(path, 'wb') as f:
        if keys.dtype == np.float32:
            f.write(_FLAT_IP + header + struct.pack('<Q', n * d))
        else:
            f.write(_SQ + header + _SQ_FIELDS.pack(_QT_FP16, 0, 0.0, d, 2 * d, 0))
            f.write(struct.pack('<Q', n * d * 2))
        f.write(data.tobytes())


def _read_exact(f, size: int, path: str, what: str) -> bytes:
    data = f.read(size)
    if len(data) != size:
        raise ValueError(f'{path}: truncated faiss index file (expected {size} bytes of {what}, '
                         f'got {len(data)})')
    return data


def read_flat_index(path: str) -> Tuple[np.ndarray, bool]:
    """Read a file written by :func:`write_flat_index` (or faiss).

    Returns:
        Tuple[np.ndarray, bool]: (N, D) keys (float32 or float16) and whether
        they are fp16.

    Raises:
        ValueError: Another index type or metric, or a truncated / corrupted
            file (named).
    """
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        tag = _read_exact(f, 4, path, 'type tag')
        if tag not in (_FLAT_IP, _SQ):
            raise ValueError(f'{path}: faiss index type {tag!r} needs faiss (the torch backend '
                             f'reads only IndexFlatIP and fp16 IndexScalarQuantizer)')
        d, n, _, _, _, metric = _HEADER.unpack(_read_exact(f, _HEADER.size, path, 'header'))
        if metric != _METRIC_IP:
            raise ValueError(f'{path}: metric {metric} is not inner product (0)')
        fp16 = tag == _SQ
        if fp16:
            qtype, _, _, d2, code_size, ntrained = _SQ_FIELDS.unpack(
                _read_exact(f, _SQ_FIELDS.size, path, 'scalar quantizer fields'))
            if qtype != _QT_FP16 or d2 != d or code_size != 2 * d or ntrained != 0:
                raise ValueError(f'{path}: scalar quantizer type {qtype} (d={d2}, code size '
                                 f'{code_size}) is not the fp16 layout the torch backend reads')
        (count, ) = struct.unpack('<Q', _read_exact(f, 8, path, 'key count'))
        expected = n * d * (2 if fp16 else 1)
        if count != expected:
            raise ValueError(f'{path}: corrupted faiss index file ({count} key values stored, '
                             f'{expected} expected for {n} keys of dimension {d})')
        dtype = np.dtype('<f2' if fp16 else '<f4')
        nbytes = n * d * dtype.itemsize
        if size - f.tell() < nbytes:
            raise ValueError(f'{path}: truncated faiss index file ({size - f.tell()} bytes of '
                             f'keys, {nbytes} expected for {n} keys of dimension {d})')
        keys = np.frombuffer(f.read(nbytes), dtype=dtype).reshape(n, d)
    return keys.astype(np.float16 if fp16 else np.float32), fp16
