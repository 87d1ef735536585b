"""Compatibility shims that let the frozen OpenMMLab releases run on current PyTorch.

This is the one package of the plugin that touches another library's behaviour.
It does four things, one module each, all applied by ``import aoissl_mm`` before anything
imports mmseg:

1. **mmcv.ops fallback.** ``mmcv-lite`` ships ``mmcv/ops`` without the compiled
   ``mmcv._ext``; mmseg 1.2.2 imports ``mmcv.ops`` at module level and fails.
   When (and only when) ``mmcv._ext`` is missing we register a small module as
   ``mmcv.ops`` holding pure-PyTorch implementations of the ops mmseg imports
   at module level (:func:`point_sample`, :func:`sigmoid_focal_loss`). Any other
   op raises :class:`ModuleNotFoundError` naming the op (mmseg's optional-op
   guards catch exactly that class). With a full mmcv build nothing is touched.

2. **Weights-only checkpoint loading.** mmengine 0.10.7 calls ``torch.load``
   without ``weights_only``; torch >= 2.6 then refuses the ``HistoryBuffer`` and
   numpy objects an mmengine checkpoint contains, so ``--resume`` and
   ``load_from`` break, while its HTTP loader (``https://``, ``open-mmlab://``,
   ``torchvision://``, ``mmcls://``) unpickles downloads fully. Every scheme of
   mmengine's ``CheckpointLoader`` gets a loader that reads through
   :mod:`aoissl_mm.utils.checkpoint` (``weights_only=True`` inside a scoped
   ``torch.serialization.safe_globals`` allow-list), or is refused with an
   error naming the checkpoint (``pavi://``, and any scheme registered later
   by another package). ``weights_only`` is never disabled.

3. **Atomic checkpoint saving.** mmengine's ``save_checkpoint`` (called by
   ``Runner.save_checkpoint``) writes a local checkpoint in place, so a crash
   mid-write leaves a partial file under the final name. For local files it is
   replaced by :func:`save_checkpoint_atomic` (temporary file, ``fsync``,
   ``os.replace``: :mod:`aoissl_mm.utils.checkpoint_writer`); other backends
   keep mmengine's writer.

4. **Distributed training without CUDA.** mmengine 0.10.7 calls
   ``torch.cuda.set_device(local_rank)`` unconditionally when it starts the
   process group (``pytorch``, ``slurm`` and ``mpi`` launchers), and wraps the
   model in ``MMDistributedDataParallel(device_ids=[LOCAL_RANK])``; on a
   machine without CUDA the first raises and the second is refused by
   PyTorch (a CPU module takes no ``device_ids``). When
   ``torch.cuda.is_available()`` is False, :func:`patch_mmengine_cpu_distributed`
   makes ``set_device`` a no-op for the duration of mmengine's process-group
   start only, and drops ``device_ids``/``output_device`` when the wrapped
   module holds no CUDA tensor. With CUDA nothing changes. The backend
   (``gloo`` instead of ``nccl`` without CUDA) is chosen at setup time by
   :func:`aoissl_mm.utils.runner_setup.resolve_dist_backend`.
"""
from typing import Any

from .atomic_save import patch_mmengine_atomic_save, save_checkpoint_atomic
from .checkpoint_loading import (
    load_from_ceph,
    load_from_http,
    load_from_local,
    load_from_mmcls,
    load_from_openmmlab,
    load_from_pavi,
    load_from_torchvision,
    patch_mmengine_checkpoint_loading,
)
from .cpu_distributed import _cpu_safe_starter, patch_mmengine_cpu_distributed
from .mmcv_ops import install_mmcv_ops_fallback, point_sample, sigmoid_focal_loss

__all__ = [
    'point_sample', 'sigmoid_focal_loss', 'install_mmcv_ops_fallback',
    'patch_mmengine_checkpoint_loading', 'save_checkpoint_atomic', 'patch_mmengine_atomic_save',
    'patch_mmengine_cpu_distributed', 'apply_all', 'MMCV_OPS_FALLBACK_ACTIVE',
    'load_from_local', 'load_from_http', 'load_from_torchvision', 'load_from_openmmlab',
    'load_from_mmcls', 'load_from_ceph', 'load_from_pavi', '_cpu_safe_starter'
]

_APPLIED = False


def __getattr__(name: str) -> Any:
    if name == 'MMCV_OPS_FALLBACK_ACTIVE':  # set when apply_all() installs the fallback
        from . import mmcv_ops
        return mmcv_ops.MMCV_OPS_FALLBACK_ACTIVE
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def apply_all() -> None:
    """Apply every shim once (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    install_mmcv_ops_fallback()
    patch_mmengine_checkpoint_loading()
    patch_mmengine_atomic_save()
    patch_mmengine_cpu_distributed()
    _APPLIED = True
