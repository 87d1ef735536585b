"""Bit-packed binary patch values: 8 mask units per byte.

A memory value is the raw multi-label mask of one patch (or image): P units x C
classes of {0, 1}. :func:`pack_bits` flattens each entry's (P, C) block in C
order (unit-major, class-minor) and packs it with :func:`numpy.packbits`
(big-endian bit order, the last byte zero-padded): a ViT-Tiny patch (P = 16 x 16,
C = 4) takes 128 bytes instead of 4096 as float32.
"""
from typing import Tuple, Union

import numpy as np
import torch
from torch import Tensor

__all__ = ['pack_bits', 'unpack_bits', 'unpack_bits_torch', 'packed_size']

ArrayLike = Union[np.ndarray, Tensor]


def packed_size(value_shape: Tuple[int, int]) -> int:
    """Bytes per packed entry of shape (P, C): ``ceil(P * C / 8)``."""
    units, classes = (int(v) for v in value_shape)
    return (units * classes + 7) // 8


def pack_bits(values: ArrayLike) -> np.ndarray:
    """Pack (N, P, C) binary values into (N, ceil(P*C/8)) uint8 rows.

    Args:
        values (np.ndarray | Tensor): (N, P, C) with every value 0 or 1 (any
            numeric or bool dtype).

    Returns:
        np.ndarray: (N, ceil(P*C/8)) uint8.

    Raises:
        ValueError: Not 3-D, or a value other than 0 and 1.
    """
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    values = np.asarray(values)
    if values.ndim != 3:
        raise ValueError(f'values must be (N, P, C), got shape {values.shape}')
    if values.dtype != np.bool_:
        bad = (values != 0) & (values != 1)
        if bad.any():
            raise ValueError(f'values must be binary (0 or 1); found {values[bad][0]!r} '
                             f'({int(bad.sum())} values)')
    n, units, classes = values.shape
    flat = values.reshape(n, units * classes).astype(np.uint8, copy=False)
    return np.packbits(flat, axis=1)


def unpack_bits(packed: ArrayLike, value_shape: Tuple[int, int]) -> np.ndarray:
    """Unpack (N, ceil(P*C/8)) uint8 rows into (N, P, C) uint8 values.

    Args:
        packed (np.ndarray | Tensor): Rows from :func:`pack_bits` (a memory-mapped
            array works; only the rows given are read).
        value_shape (Tuple[int, int]): (P, C).

    Returns:
        np.ndarray: (N, P, C) uint8 of 0 and 1.

    Raises:
        ValueError: Not 2-D uint8 or the row length not ``ceil(P*C/8)``.
    """
    if isinstance(packed, Tensor):
        packed = packed.detach().cpu().numpy()
    packed = np.asarray(packed)
    units, classes = (int(v) for v in value_shape)
    nbytes = packed_size((units, classes))
    if packed.ndim != 2 or packed.dtype != np.uint8 or packed.shape[1] != nbytes:
        raise ValueError(f'packed values must be (N, {nbytes}) uint8 for value shape '
                         f'({units}, {classes}), got {packed.shape} {packed.dtype}')
    bits = np.unpackbits(packed, axis=1, count=units * classes)
    return bits.reshape(packed.shape[0], units, classes)


def unpack_bits_torch(packed: ArrayLike, value_shape: Tuple[int, int]) -> Tensor:
    """:func:`unpack_bits` as a float32 tensor (N, P, C)."""
    return torch.from_numpy(unpack_bits(packed, value_shape)).float()
