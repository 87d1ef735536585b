"""Compat shim 3: mmengine's ``save_checkpoint`` writes local files atomically.

See :mod:`aoissl_mm.compat`.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Optional

_MMENGINE_SAVE: Optional[Any] = None  # mmengine's own save_checkpoint, kept for other backends


def save_checkpoint_atomic(checkpoint: dict,
                           filename: str,
                           file_client_args: Optional[dict] = None,
                           backend_args: Optional[dict] = None) -> None:
    """mmengine's ``save_checkpoint``, writing local files atomically.

    A local file (mmengine's ``LocalBackend``) is written by
    :func:`aoissl_mm.utils.checkpoint_writer.atomic_torch_save`; ``pavi://``,
    remote backends and the deprecated ``file_client_args`` go to mmengine's
    function unchanged. Same signature as mmengine 0.10.7's.
    """
    from mmengine.fileio import LocalBackend, get_file_backend
    if (file_client_args is None and not filename.startswith('pavi://') and isinstance(
            get_file_backend(filename, backend_args=backend_args), LocalBackend)):
        importlib.import_module('aoissl_mm.utils.checkpoint_writer').atomic_torch_save(
            checkpoint, filename)
        return
    _MMENGINE_SAVE(checkpoint, filename, file_client_args, backend_args)


def patch_mmengine_atomic_save() -> None:
    """Make ``Runner.save_checkpoint`` (and ``mmengine.runner.save_checkpoint``) atomic.

    mmengine binds the function by name in three modules; each name is
    pointed at :func:`save_checkpoint_atomic`.
    """
    global _MMENGINE_SAVE
    import mmengine.runner
    import mmengine.runner.checkpoint as mm_checkpoint
    import mmengine.runner.runner as mm_runner
    if mm_checkpoint.save_checkpoint is save_checkpoint_atomic:
        return
    _MMENGINE_SAVE = mm_checkpoint.save_checkpoint
    for module in (mm_checkpoint, mm_runner, mmengine.runner):
        module.save_checkpoint = save_checkpoint_atomic
