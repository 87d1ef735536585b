"""Compat shim 4: mmengine's launchers and DDP wrapper on machines without CUDA.

See :mod:`aoissl_mm.compat`.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator

import torch

_DIST_STARTERS = ('_init_dist_pytorch', '_init_dist_slurm', '_init_dist_mpi')


@contextlib.contextmanager
def _no_cuda_set_device() -> Iterator[None]:
    """``torch.cuda.set_device`` does nothing inside the block (only used without CUDA)."""
    original = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = original


def _cpu_safe_starter(start: Callable) -> Callable:
    """Wrap one of mmengine's process-group starters: no ``set_device`` without CUDA."""

    @functools.wraps(start)
    def starter(*args: Any, **kwargs: Any) -> Any:
        if torch.cuda.is_available():
            return start(*args, **kwargs)
        with _no_cuda_set_device():
            return start(*args, **kwargs)

    starter.__aoissl_cpu_safe__ = True
    return starter


def _on_cuda(module: torch.nn.Module) -> bool:
    tensors = list(module.parameters()) + list(module.buffers())
    return any(t.is_cuda for t in tensors)


def patch_mmengine_cpu_distributed() -> None:
    """Let mmengine's ``pytorch``/``slurm``/``mpi`` launchers train on CPU processes.

    * mmengine's process-group starters (``mmengine.dist.utils._init_dist_*``,
      looked up by ``init_dist`` at call time) skip ``torch.cuda.set_device``
      when ``torch.cuda.is_available()`` is False; everything else they do
      (environment variables, ``init_process_group``) is unchanged.
    * ``MMDistributedDataParallel`` drops ``device_ids`` and ``output_device``
      when the module it wraps holds no CUDA parameter or buffer (PyTorch
      refuses them for a CPU module; mmengine passes ``[LOCAL_RANK]``
      unconditionally, also for each part of ``MMSeparateDistributedDataParallel``).
      A module on a GPU keeps them.
    """
    import mmengine.dist.utils as mm_dist_utils
    from mmengine.model.wrappers import MMDistributedDataParallel
    for name in _DIST_STARTERS:
        start = getattr(mm_dist_utils, name)
        if not getattr(start, '__aoissl_cpu_safe__', False):
            setattr(mm_dist_utils, name, _cpu_safe_starter(start))
    init = MMDistributedDataParallel.__init__
    if getattr(init, '__aoissl_cpu_safe__', False):
        return

    @functools.wraps(init)
    def __init__(self: Any, module: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
        if not _on_cuda(module):
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        init(self, module, *args, **kwargs)

    __init__.__aoissl_cpu_safe__ = True
    MMDistributedDataParallel.__init__ = __init__
