"""Compatibility shims that let the frozen OpenMMLab releases run on current PyTorch.

This is the one module of the plugin that touches another library's behaviour.
It does four things, all applied by ``import aoissl_mm`` before anything
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
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import logging
import os
import sys
import types
import warnings
from typing import Any, Callable, Iterator, Optional

import torch
import torch.nn.functional as F

__all__ = [
    'point_sample', 'sigmoid_focal_loss', 'install_mmcv_ops_fallback',
    'patch_mmengine_checkpoint_loading', 'save_checkpoint_atomic', 'patch_mmengine_atomic_save',
    'patch_mmengine_cpu_distributed', 'apply_all', 'MMCV_OPS_FALLBACK_ACTIVE'
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
# 2. weights-only checkpoint loading for every mmengine scheme
# ----------------------------------------------------------------------------
# The loaders below replace mmengine's entries in ``CheckpointLoader``; they resolve mmengine's
# names (its model-zoo tables, its cache folder) and leave reading to aoissl_mm.utils.checkpoint.
# That module is imported when a checkpoint is read, not here: ``import aoissl_mm`` applies these
# shims before its subpackages exist.
def _checkpoint() -> types.ModuleType:
    return importlib.import_module('aoissl_mm.utils.checkpoint')


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine scheme ``''`` (a local file), read weights-only."""
    return _checkpoint().safe_torch_load(filename, map_location=map_location)


def load_from_http(filename: str, map_location: Any = None) -> Any:
    """mmengine schemes ``http://`` and ``https://``: download, then read weights-only.

    mmengine's own loader unpickles the download fully
    (``torch.hub.load_state_dict_from_url`` without ``weights_only``).
    """
    return _checkpoint().safe_torch_load(filename, map_location=map_location)


def load_from_torchvision(filename: str, map_location: Any = None) -> Any:
    """mmengine schemes ``torchvision://NAME`` and ``modelzoo://NAME`` (torchvision's URLs)."""
    from mmengine.runner import checkpoint as mm_ckpt
    prefix = 'modelzoo://' if filename.startswith('modelzoo://') else 'torchvision://'
    if prefix == 'modelzoo://':
        _warn('The URL scheme of "modelzoo://" is deprecated, please use "torchvision://" instead')
    url = _lookup(mm_ckpt.get_torchvision_models(), filename[len(prefix):], filename)
    return _checkpoint().safe_torch_load(url, map_location=map_location)


def load_from_openmmlab(filename: str, map_location: Any = None) -> Any:
    """mmengine schemes ``open-mmlab://NAME`` and ``openmmlab://NAME``.

    The name is looked up in mmengine's tables (plus ``$MMENGINE_HOME/open_mmlab.json``);
    it gives a URL or a file under mmengine's home folder.
    """
    from mmengine.runner import checkpoint as mm_ckpt
    prefix = 'open-mmlab://' if filename.startswith('open-mmlab://') else 'openmmlab://'
    name = filename[len(prefix):]
    deprecated = mm_ckpt.get_deprecated_model_names()
    if name in deprecated:
        _warn(f'{prefix}{name} is deprecated in favor of {prefix}{deprecated[name]}')
        name = deprecated[name]
    target = _lookup(mm_ckpt.get_external_models(), name, filename)
    if not _checkpoint().is_url(target):
        target = os.path.join(mm_ckpt._get_mmengine_home(), target)
    return _checkpoint().safe_torch_load(target, map_location=map_location)


def load_from_mmcls(filename: str, map_location: Any = None) -> Any:
    """mmengine scheme ``mmcls://NAME``: an mmcls URL; its ``backbone.`` tensors, as mmengine."""
    from mmengine.runner import checkpoint as mm_ckpt
    url = _lookup(mm_ckpt.get_mmcls_models(), filename[len('mmcls://'):], filename)
    checkpoint = _checkpoint().safe_torch_load(url, map_location=map_location)
    return mm_ckpt._process_mmcls_checkpoint(checkpoint)


def load_from_ceph(filename: str, map_location: Any = None, backend: str = 'petrel') -> Any:
    """mmengine schemes ``s3://`` and ``petrel://`` (also ``name:s3://``), read weights-only."""
    from mmengine.fileio import get_file_backend
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    with io.BytesIO(data) as buffer:
        return _checkpoint().weights_only_load(buffer, map_location, name=filename)


def load_from_pavi(filename: str, map_location: Any = None) -> Any:
    """mmengine scheme ``pavi://``: refused (its download cannot be checked here)."""
    raise RuntimeError(
        f'refusing to load checkpoint {filename!r}: aoissl_mm reads checkpoints weights-only '
        'and does not support pavi://; download the file and pass its local path')


def _warn(message: str) -> None:
    from mmengine.logging import print_log
    print_log(message, logger='current', level=logging.WARNING)


def _lookup(table: dict, name: str, filename: str) -> str:
    if name not in table:
        raise KeyError(f'checkpoint {filename!r}: no model named {name!r} in mmengine\'s table')
    return table[name]


# prefixes exactly as mmengine 0.10.7 registers them (the s3/petrel ones are regular expressions)
_MMENGINE_SCHEMES = (
    ('', load_from_local),
    (('http://', 'https://'), load_from_http),
    (('modelzoo://', 'torchvision://'), load_from_torchvision),
    (('open-mmlab://', 'openmmlab://'), load_from_openmmlab),
    ('mmcls://', load_from_mmcls),
    ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), load_from_ceph),
    ('pavi://', load_from_pavi),
)


def patch_mmengine_checkpoint_loading() -> None:
    """Route every checkpoint mmengine reads through the weights-only allow-list.

    ``Runner.resume``, ``load_from``, ``load_checkpoint`` and ``PretrainedInit``
    all reach ``CheckpointLoader``. Each scheme it knows gets a loader above
    (registered with ``force=True``); its lookup is wrapped so that a scheme
    registered later by anyone else is refused with an error naming the
    checkpoint, instead of being read by a loader that may unpickle fully.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    if getattr(CheckpointLoader, '__aoissl_weights_only__', False):
        return
    ours = set()
    for prefixes, loader in _MMENGINE_SCHEMES:
        CheckpointLoader.register_scheme(prefixes=prefixes, loader=loader, force=True)
        ours.add(loader)
    find_loader = CheckpointLoader._get_checkpoint_loader.__func__

    def _get_checkpoint_loader(cls: type, path: str) -> Any:
        loader = find_loader(cls, path)
        if loader not in ours:
            raise RuntimeError(
                f'refusing to load checkpoint {path!r}: its scheme is served by '
                f'{getattr(loader, "__qualname__", loader)!s}, not by one of aoissl_mm\'s '
                'weights-only loaders; download the file and pass its local path')
        return loader

    CheckpointLoader._get_checkpoint_loader = classmethod(_get_checkpoint_loader)
    CheckpointLoader.__aoissl_weights_only__ = True


# ----------------------------------------------------------------------------
# 3. atomic checkpoint saving
# ----------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------
# 4. distributed training without CUDA
# ----------------------------------------------------------------------------
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


_APPLIED = False


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
