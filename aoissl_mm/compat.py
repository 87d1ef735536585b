"""Compatibility shims that let the frozen OpenMMLab releases run on current PyTorch.

This is the one module of the plugin that touches another library's behaviour.
It does two things, both applied by ``import aoissl_mm`` before anything
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
   ``load_from`` break. We replace mmengine's local-file loader with one that
   loads with ``weights_only=True`` inside a ``torch.serialization.safe_globals``
   scope holding an explicit allow-list (:data:`CHECKPOINT_SAFE_GLOBALS`). The
   allow-list is scoped to checkpoint loading, never process-wide, and
   ``weights_only`` is never disabled.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import types
import warnings
from typing import Any, List, Optional

import torch
import torch.nn.functional as F

__all__ = [
    'point_sample', 'sigmoid_focal_loss', 'install_mmcv_ops_fallback',
    'checkpoint_safe_globals', 'safe_torch_load', 'patch_mmengine_checkpoint_loading',
    'apply_all', 'MMCV_OPS_FALLBACK_ACTIVE'
]

MMCV_OPS_FALLBACK_ACTIVE = False


# ----------------------------------------------------------------------------
# 1. pure-PyTorch mmcv ops
# ----------------------------------------------------------------------------
def point_sample(input: torch.Tensor,
                 points: torch.Tensor,
                 align_corners: bool = False,
                 **kwargs: Any) -> torch.Tensor:
    """Sample ``input`` at normalised ``points`` (mmcv.ops.point_sample).

    Args:
        input (Tensor): Feature map of shape (N, C, H, W).
        points (Tensor): Point coordinates in [0, 1] x [0, 1], shape (N, P, 2)
            or (N, Hg, Wg, 2); ``points[..., 0]`` is x, ``points[..., 1]`` is y.
        align_corners (bool): As in :func:`torch.nn.functional.grid_sample`.
        **kwargs: Passed on to ``grid_sample`` (e.g. ``mode``).

    Returns:
        Tensor: (N, C, P) for 3-D ``points``, else (N, C, Hg, Wg).
    """
    add_dim = points.dim() == 3
    if add_dim:
        points = points.unsqueeze(2)
    output = F.grid_sample(
        input, 2.0 * points - 1.0, align_corners=align_corners, **kwargs)
    if add_dim:
        output = output.squeeze(3)
    return output


def sigmoid_focal_loss(input: torch.Tensor,
                       target: torch.Tensor,
                       gamma: float = 2.0,
                       alpha: float = 0.25,
                       weight: Optional[torch.Tensor] = None,
                       reduction: str = 'mean') -> torch.Tensor:
    """Sigmoid focal loss with mmcv's ``sigmoid_focal_loss`` semantics.

    ``target`` holds class indices (N,); index ``C`` (= ``input.size(1)``)
    means "no class" (all channels negative). Element-wise loss for class c,
    with ``p = sigmoid(x)`` and ``t = [target == c]``::

        -alpha * (1 - p)^gamma * log(p)          if t
        -(1 - alpha) * p^gamma * log(1 - p)      otherwise

    ``weight`` (C,) scales every element of a sample by ``weight[target]``.
    ``'mean'`` divides the sum by N (not N*C), as mmcv does.
    """
    if reduction not in ('none', 'mean', 'sum'):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    if input.dim() != 2 or target.dim() != 1 or input.size(0) != target.size(0):
        raise ValueError('sigmoid_focal_loss expects input (N, C) and target (N,), got '
                         f'{tuple(input.shape)} and {tuple(target.shape)}')
    num_classes = input.size(1)
    classes = torch.arange(num_classes, device=input.device)
    t = (target.long().unsqueeze(1) == classes.unsqueeze(0)).to(input.dtype)
    p = torch.sigmoid(input)
    log_p = F.logsigmoid(input)
    log_1mp = F.logsigmoid(-input)
    loss = -alpha * (1 - p).pow(gamma) * t * log_p \
        - (1 - alpha) * p.pow(gamma) * (1 - t) * log_1mp
    if weight is not None:
        if weight.dim() != 1 or weight.numel() != num_classes:
            raise ValueError(f'weight must have shape ({num_classes},), got {tuple(weight.shape)}')
        valid = target < num_classes
        w = torch.ones_like(target, dtype=input.dtype)
        w[valid] = weight.to(input.dtype)[target[valid].long()]
        loss = loss * w.unsqueeze(1)
    if reduction == 'mean':
        return loss.sum() / input.size(0)
    if reduction == 'sum':
        return loss.sum()
    return loss


class _MMCVOpsFallback(types.ModuleType):
    """Stand-in for ``mmcv.ops`` when the compiled ``mmcv._ext`` is missing."""

    _provided = ('point_sample', 'sigmoid_focal_loss')

    def __init__(self) -> None:
        super().__init__('mmcv.ops', 'aoissl_mm pure-PyTorch fallback for mmcv.ops')
        self.point_sample = point_sample
        self.sigmoid_focal_loss = sigmoid_focal_loss
        self.__all__ = list(self._provided)
        self.__path__ = []  # a package, so "import mmcv.ops.xxx" gives a clean error
        self.__aoissl_fallback__ = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith('__') and name.endswith('__'):
            raise AttributeError(name)
        raise ModuleNotFoundError(
            f"mmcv.ops.{name} needs a full mmcv build with compiled ops (mmcv._ext); "
            f"this environment has mmcv-lite, for which aoissl_mm only provides "
            f"{', '.join(self._provided)}. Install the full mmcv 2.1.0 to use {name}.",
            name='mmcv._ext')


def _has_compiled_mmcv_ops() -> bool:
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def install_mmcv_ops_fallback() -> bool:
    """Register the pure-PyTorch ``mmcv.ops`` if the compiled ops are missing.

    Returns:
        bool: True when the fallback is (now) active, False when a full mmcv
        with compiled ops is installed and nothing was touched.
    """
    global MMCV_OPS_FALLBACK_ACTIVE
    if _has_compiled_mmcv_ops():
        return False
    current = sys.modules.get('mmcv.ops')
    if current is None or not getattr(current, '__aoissl_fallback__', False):
        fallback = _MMCVOpsFallback()
        sys.modules['mmcv.ops'] = fallback
        mmcv = sys.modules.get('mmcv')
        if mmcv is None:
            import mmcv  # noqa: F401  (the parent package is pure Python)
            mmcv = sys.modules['mmcv']
        setattr(mmcv, 'ops', fallback)
    # mmcv.cnn warns once that the deformable-attention op is missing; expected here
    warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
    MMCV_OPS_FALLBACK_ACTIVE = True
    return True


# ----------------------------------------------------------------------------
# 2. weights-only checkpoint loading
# ----------------------------------------------------------------------------
def checkpoint_safe_globals() -> List[Any]:
    """The allow-list of non-tensor types found in mmengine checkpoints.

    Derived from checkpoints written by mmengine 0.10.7 runners (message hub
    ``HistoryBuffer`` objects holding numpy arrays and scalars, numpy dtypes
    of logged values, the dataset ``classes`` tuple). Only these types, plus
    torch's own weights-only set, can be reconstructed.
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    core = getattr(np, '_core', None) or np.core
    multiarray = core.multiarray
    # getattr: numpy 2 pickles dtypes of logged scalars through builtins.getattr (measured:
    # resuming fails without it); the weights-only unpickler still only calls allowed globals
    allowed: List[Any] = [HistoryBuffer, np.ndarray, np.dtype, getattr]
    # numpy writes its private module path into the pickle; list both spellings
    for mod_name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        allowed.append((multiarray._reconstruct, f'{mod_name}._reconstruct'))
        allowed.append((multiarray.scalar, f'{mod_name}.scalar'))
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:  # numpy >= 1.25: one class per dtype
        for name in ('Float16DType', 'Float32DType', 'Float64DType', 'Int8DType',
                     'Int16DType', 'Int32DType', 'Int64DType', 'UInt8DType',
                     'UInt16DType', 'UInt32DType', 'UInt64DType', 'BoolDType',
                     'LongDType', 'ULongDType', 'LongLongDType', 'ULongLongDType'):
            cls = getattr(dtypes, name, None)
            if cls is not None:
                allowed.append(cls)
    return allowed


def safe_torch_load(path: str, map_location: Any = 'cpu') -> Any:
    """``torch.load`` with ``weights_only=True`` and the checkpoint allow-list.

    Args:
        path (str): Checkpoint file.
        map_location: As in :func:`torch.load`.

    Raises:
        FileNotFoundError: The file does not exist.
        RuntimeError: The file holds an object outside the allow-list (e.g. a
            ``__reduce__`` payload); the message names the file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle.UnpicklingError and friends
        raise RuntimeError(
            f'refusing to load checkpoint {path!r}: it is not a weights-only '
            f'checkpoint of allowed types ({type(err).__name__}: {err})') from err


def _load_from_local(filename: str, map_location: Any = None) -> Any:
    filename = os.path.expanduser(filename)
    return safe_torch_load(filename, map_location=map_location)


def patch_mmengine_checkpoint_loading() -> None:
    """Route mmengine's local-file checkpoint loading through :func:`safe_torch_load`.

    ``Runner.resume``, ``load_from``, ``load_checkpoint`` and ``PretrainedInit``
    all reach ``CheckpointLoader``; we register our loader for the local-file
    scheme (prefix ``''``) in its own scheme registry.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    if getattr(CheckpointLoader._schemes.get(''), '__aoissl_safe__', False):
        return
    _load_from_local.__aoissl_safe__ = True  # type: ignore[attr-defined]
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)


_APPLIED = False


def apply_all() -> None:
    """Apply every shim once (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    install_mmcv_ops_fallback()
    patch_mmengine_checkpoint_loading()
    _APPLIED = True
