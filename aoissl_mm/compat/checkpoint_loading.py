"""Compat shim 2: weights-only checkpoint loading for every mmengine scheme.

See :mod:`aoissl_mm.compat`.
"""
from __future__ import annotations

import importlib
import importlib.util
import io
import logging
import os
import types
from typing import Any


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
