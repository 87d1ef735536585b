"""Compat shim 1: pure-PyTorch ``mmcv.ops`` when mmcv-lite lacks the compiled ops.

See :mod:`aoissl_mm.compat`.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from typing import Any, Optional

import torch
import torch.nn.functional as F

MMCV_OPS_FALLBACK_ACTIVE = False

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
