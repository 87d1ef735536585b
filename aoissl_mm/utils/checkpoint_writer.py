"""Checkpoints written atomically: :func:`atomic_torch_save`.

Every local checkpoint this package (and, through :mod:`aoissl_mm.compat`,
mmengine) writes goes through :func:`atomic_torch_save`, i.e. through
:func:`aoissl_mm.utils.atomic_io.atomic_open` (temporary file, ``fsync``,
``os.replace``, folder ``fsync``). Like :mod:`aoissl_mm.utils.checkpoint`, this
module imports no other part of the package than :mod:`.atomic_io`
(:mod:`aoissl_mm.compat` imports it lazily).
"""
from typing import Any

import torch

from .atomic_io import atomic_open

__all__ = ['atomic_torch_save']


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)``, atomically (temporary file, fsync, ``os.replace``).

    Args:
        obj (Any): What to save (an mmengine checkpoint dict).
        path (str): Final file name.
    """
    with atomic_open(path, 'wb') as f:
        torch.save(obj, f)
