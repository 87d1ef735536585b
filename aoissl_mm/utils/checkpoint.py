"""The one way in for checkpoints: weights-only reading, state-dict extraction, key checks.

Every checkpoint this package (and, through :mod:`aoissl_mm.compat`, mmengine)
reads goes through :func:`weights_only_load`: ``torch.load`` with
``weights_only=True`` inside a :func:`torch.serialization.safe_globals` scope
holding :func:`checkpoint_safe_globals`, the few non-tensor types an mmengine
checkpoint contains. ``weights_only`` is never disabled and the allow-list is
never installed process-wide.

* :func:`safe_torch_load` reads a local file or an ``http(s)://`` URL (downloaded
  once into ``$TORCH_HOME/hub/checkpoints/``, as mmengine does).
* :func:`extract_state_dict` finds the tensors in what was loaded, with one set
  of container rules (``state_dict`` / ``model`` / ``module`` entries,
  ``module.`` key prefixes).
* :func:`compare_state_dicts` and :func:`check_state_dict_matches` compare keys
  and shapes with a model; :func:`check_checkpoint_matches` does all three.
* :func:`preload_checkpoint` lets ``tools/test.py`` read its checkpoint once:
  checked strictly, then handed to the Runner's own loading step.

:mod:`aoissl_mm.compat` routes mmengine's ``CheckpointLoader`` here; it imports
this module when a checkpoint is read, since ``import aoissl_mm`` applies the
shims before the subpackages exist. This module imports no other part of the
package but :mod:`aoissl_mm.utils.checkpoint_errors` (why a file cannot be read).
"""
import os
import pickle
import sys
import urllib.error
import urllib.parse
from collections import OrderedDict
from collections.abc import Mapping
from typing import IO, Any, Dict, List, NamedTuple, Optional, Tuple, Union

import torch
from torch import nn

from .checkpoint_errors import diagnose_unreadable, refusal_reason

__all__ = [
    'checkpoint_safe_globals', 'weights_only_load', 'is_url', 'download_checkpoint',
    'safe_torch_load', 'extract_state_dict', 'StateDictDiff', 'compare_state_dicts',
    'check_state_dict_matches', 'check_checkpoint_matches', 'preload_checkpoint'
]

URL_PREFIXES = ('http://', 'https://')
# container keys under which checkpoints store their weights, tried in order
_CONTAINER_KEYS = ('state_dict', 'model', 'module')
# prefix a DistributedDataParallel (or other wrapper) adds to every key
_WRAPPER_PREFIX = 'module.'


# ----------------------------------------------------------------------------
# weights-only loading
# ----------------------------------------------------------------------------
def checkpoint_safe_globals() -> List[Any]:
    """The allow-list of non-tensor types found in mmengine checkpoints.

    Derived from checkpoints written by mmengine 0.10.7 runners (message hub
    ``HistoryBuffer`` objects holding numpy arrays and scalars, numpy dtypes
    of logged values, the dataset ``classes`` tuple). Only these types, plus
    torch's own weights-only set, can be reconstructed.

    Returns:
        List[Any]: Entries for :func:`torch.serialization.safe_globals`.
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


def weights_only_load(file: Union[str, IO[bytes]],
                      map_location: Any = 'cpu',
                      name: Optional[str] = None) -> Any:
    """``torch.load(file, weights_only=True)`` inside the checkpoint allow-list scope.

    Args:
        file (str | IO[bytes]): A file path or an open binary file / buffer.
        map_location: As in :func:`torch.load`. Defaults to ``'cpu'``.
        name (str, optional): How errors name the checkpoint; defaults to
            ``file`` when it is a path.

    Returns:
        Any: What :func:`torch.load` returned.

    Raises:
        RuntimeError: Naming the checkpoint, one of: "refusing to load ...":
            it holds a global outside the allow-list (e.g. a ``__reduce__``
            payload); "cannot read ...": the file is empty, truncated or
            corrupt (a zip without its central directory, a member failing its
            CRC, damaged pickled data), or not a PyTorch checkpoint at all
            (:func:`diagnose_unreadable` says which, from the file's bytes).
    """
    label = name if name is not None else (file if isinstance(file, str) else '<buffer>')
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = diagnose_unreadable(file, err)
        if reason is None:  # an intact file: torch's weights-only unpickler refused a global
            raise RuntimeError(
                f'refusing to load checkpoint {label!r}: it is not a weights-only checkpoint '
                f'of allowed types ({refusal_reason(err)})') from err
        raise RuntimeError(f'cannot read checkpoint {label!r}: {reason}') from err
    except Exception as err:  # truncated zip, empty file, garbage, bad map_location ...
        reason = diagnose_unreadable(file, err) or f'{type(err).__name__}: {err}'
        raise RuntimeError(f'cannot read checkpoint {label!r}: {reason}') from err


def is_url(source: str) -> bool:
    """Whether ``source`` is an ``http://`` or ``https://`` address."""
    return isinstance(source, str) and source.startswith(URL_PREFIXES)


def download_checkpoint(url: str, model_dir: Optional[str] = None) -> str:
    """Download ``url`` into the torch hub cache unless a file of that name is there.

    As mmengine's HTTP loader (``torch.hub.load_state_dict_from_url``): the
    file is cached by name as ``<model_dir>/<last path component>``, with
    ``model_dir`` defaulting to ``$TORCH_HOME/hub/checkpoints``; a cached file
    is reused. The download goes to a temporary file first.

    Args:
        url (str): ``http(s)://`` address of the checkpoint.
        model_dir (str, optional): Cache folder.

    Returns:
        str: The local file.

    Raises:
        ValueError: The URL has no file name.
        FileNotFoundError: The server answered 404.
        RuntimeError: Any other download failure, naming the URL.
    """
    file_name = os.path.basename(urllib.parse.urlparse(url).path)
    if file_name in ('', '.', '..'):
        raise ValueError(f'checkpoint URL {url!r} does not end in a file name')
    model_dir = model_dir or os.path.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = os.path.join(model_dir, file_name)
    if not os.path.exists(cached):
        sys.stderr.write(f'Downloading: "{url}" to {cached}\n')
        try:
            torch.hub.download_url_to_file(url, cached, progress=os.isatty(0))
        except urllib.error.HTTPError as err:
            if err.code == 404:
                raise FileNotFoundError(f'checkpoint not found: {url} (HTTP 404)') from err
            raise RuntimeError(f'cannot download checkpoint {url}: {err}') from err
        except OSError as err:  # URLError, refused connection, timeout
            raise RuntimeError(f'cannot download checkpoint {url}: {err}') from err
    return cached


def safe_torch_load(source: str, map_location: Any = 'cpu') -> Any:
    """Read a checkpoint weights-only from a local path or an ``http(s)://`` URL.

    A URL is downloaded with :func:`download_checkpoint` (in a distributed
    run rank 0 downloads first, as mmengine does) and the cached file is read
    with :func:`weights_only_load`, so both routes use the same allow-list.

    Args:
        source (str): Checkpoint file (``~`` is expanded) or URL.
        map_location: As in :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        Any: What :func:`torch.load` returned.

    Raises:
        FileNotFoundError: The file does not exist (or the URL answers 404).
        RuntimeError: The checkpoint holds an object outside the allow-list
            (e.g. a ``__reduce__`` payload), cannot be read, or cannot be
            downloaded; the message names the file or URL.
    """
    if is_url(source):
        from mmengine.dist import get_dist_info
        rank, world_size = get_dist_info()
        if rank == 0:
            cached = download_checkpoint(source)
        if world_size > 1:
            torch.distributed.barrier()
            if rank > 0:
                cached = download_checkpoint(source)
        return weights_only_load(cached, map_location, name=f'{source} (cached as {cached})')
    path = os.path.expanduser(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {source}')
    return weights_only_load(path, map_location)


# ----------------------------------------------------------------------------
# state dicts
# ----------------------------------------------------------------------------
def extract_state_dict(checkpoint: object, source: str) -> Dict[str, torch.Tensor]:
    """Return the tensors held by a loaded checkpoint, by name.

    Container rules: the first of the entries ``state_dict``, ``model``,
    ``module`` that is a mapping holds the weights (mmengine, DeiT-style and
    wrapper checkpoints), else the checkpoint itself is the state dict. Keys
    starting with ``module.`` (saved from a DistributedDataParallel wrapper)
    lose that prefix, as mmengine's loader does. Non-tensor entries are dropped.

    Args:
        checkpoint (object): What :func:`safe_torch_load` returned.
        source (str): The file or URL it came from (for error messages).

    Returns:
        Dict[str, torch.Tensor]: The tensors, in checkpoint order.

    Raises:
        TypeError: The checkpoint holds no mapping of names to tensors.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'checkpoint {source!r}: expected a state dict or a dict with a '
                        f"'state_dict' entry, got {type(checkpoint).__name__}")
    state = checkpoint
    for key in _CONTAINER_KEYS:
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping):
            state = inner
            break
    tensors = OrderedDict(
        (k[len(_WRAPPER_PREFIX):] if k.startswith(_WRAPPER_PREFIX) else k, v)
        for k, v in state.items() if isinstance(k, str) and torch.is_tensor(v))
    if not tensors:
        raise TypeError(f'checkpoint {source!r} holds no tensors (top-level keys: '
                        f'{sorted(map(str, checkpoint.keys()))[:10]})')
    return tensors


class StateDictDiff(NamedTuple):
    """How a checkpoint's tensors differ from a model's.

    Attributes:
        missing (List[str]): Model keys absent from the checkpoint (model order).
        unexpected (List[str]): Checkpoint keys the model lacks (checkpoint order).
        mismatched (List[Tuple[str, tuple, tuple]]): ``(key, model shape,
            checkpoint shape)`` for keys in both whose shapes differ (model order).
    """

    missing: List[str]
    unexpected: List[str]
    mismatched: List[Tuple[str, tuple, tuple]]


def compare_state_dicts(own: Mapping, state: Mapping) -> StateDictDiff:
    """Compare the keys and shapes of a checkpoint's ``state`` with a model's ``own``.

    Args:
        own (Mapping): The model's state dict.
        state (Mapping): The checkpoint's tensors (e.g. from :func:`extract_state_dict`).

    Returns:
        StateDictDiff: Missing, unexpected and wrong-shape keys.
    """
    return StateDictDiff(
        missing=[k for k in own if k not in state],
        unexpected=[k for k in state if k not in own],
        mismatched=[(k, tuple(own[k].shape), tuple(state[k].shape)) for k in own
                    if k in state and tuple(state[k].shape) != tuple(own[k].shape)])


def _unwrap(model: nn.Module) -> nn.Module:
    """The model a checkpoint belongs to: inside a DDP wrapper or a TTA model."""
    return model.module if hasattr(model, 'module') else model


def check_state_dict_matches(model: nn.Module,
                             state: Mapping,
                             source: str,
                             max_names: int = 10) -> None:
    """Require the keys and shapes of ``state`` to be exactly those of ``model``.

    mmengine loads ``load_from`` non-strictly and only warns, so a checkpoint of
    another architecture would silently be evaluated as a partly random model.

    Args:
        model (nn.Module): The model (a DDP wrapper or TTA model is unwrapped).
        state (Mapping): The checkpoint's tensors.
        source (str): The checkpoint's file or URL, for the message.
        max_names (int): Keys listed per kind of difference. Defaults to 10.

    Raises:
        ValueError: Missing, unexpected or wrong-shape keys, naming them.
    """
    diff = compare_state_dicts(_unwrap(model).state_dict(), state)
    if not (diff.missing or diff.unexpected or diff.mismatched):
        return
    mismatched = [f'{k}: model {m}, checkpoint {c}' for k, m, c in diff.mismatched]
    parts = []
    for title, names in (('shape mismatch', mismatched), ('missing in checkpoint', diff.missing),
                         ('not in model', diff.unexpected)):
        if names:
            more = f' (+{len(names) - max_names} more)' if len(names) > max_names else ''
            parts.append(f'{title} [{len(names)}]: ' + '; '.join(names[:max_names]) + more)
    raise ValueError(f'checkpoint {source} does not match the model '
                     f'({type(model).__name__}); is it from another architecture or config? '
                     + ' | '.join(parts))


def check_checkpoint_matches(model: nn.Module,
                             source: str,
                             max_names: int = 10) -> Dict[str, torch.Tensor]:
    """Read ``source`` weights-only and require its keys and shapes to match ``model``.

    Args:
        model (nn.Module): The model.
        source (str): Checkpoint file or ``http(s)://`` URL.
        max_names (int): Keys listed per kind of difference. Defaults to 10.

    Returns:
        Dict[str, torch.Tensor]: The checkpoint's state dict (``module.``
        prefixes removed), ready for ``model.load_state_dict``.

    Raises:
        FileNotFoundError: No such file.
        RuntimeError: Not a weights-only checkpoint, or unreadable.
        TypeError: The checkpoint holds no tensors.
        ValueError: Missing, unexpected or wrong-shape keys, naming them.
    """
    state = extract_state_dict(safe_torch_load(source), source)
    check_state_dict_matches(model, state, source, max_names)
    return state


def preload_checkpoint(runner: Any, source: str) -> Dict[str, torch.Tensor]:
    """Read ``source`` once, check it strictly, and make ``runner`` load it from memory.

    ``Runner.test()`` loads ``load_from`` after the ``before_run`` hooks,
    through ``runner.load_checkpoint``. For ``source`` that call is replaced
    (on this runner only) by one that does what mmengine's does, with the
    checkpoint already read here: call the ``after_load_checkpoint`` hooks,
    load the state dict into the (unwrapped) model, mark the runner as
    loaded and log it. Loading is strict, since the keys were checked.
    Other file names go to the Runner's own method. A model with a
    ``filter_checkpoint_state(state, source)`` method (``RetrievalSegmentor``:
    the backbone of any SSL or fine-tuned checkpoint) chooses first which of
    the checkpoint's tensors are its own; those must then match exactly.

    Args:
        runner (mmengine.runner.Runner): A built runner whose ``load_from`` is ``source``.
        source (str): Checkpoint file or ``http(s)://`` URL.

    Returns:
        Dict[str, torch.Tensor]: The checked state dict.

    Raises:
        FileNotFoundError, RuntimeError, TypeError, ValueError: As
            :func:`check_checkpoint_matches`, before anything runs.
    """
    checkpoint = safe_torch_load(source)
    state = extract_state_dict(checkpoint, source)
    keep = getattr(_unwrap(runner.model), 'filter_checkpoint_state', None)
    if keep is not None:  # e.g. a retrieval segmentor takes an SSL checkpoint's backbone
        state = keep(state, source)
    check_state_dict_matches(runner.model, state, source)
    runner_load = runner.load_checkpoint

    def load_checkpoint(filename: str, *args: Any, **kwargs: Any) -> Any:
        if filename != source:
            return runner_load(filename, *args, **kwargs)
        runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        _unwrap(runner.model).load_state_dict(state, strict=True)
        runner._has_loaded = True  # what mmengine's Runner.load_checkpoint sets
        runner.logger.info(f'Load checkpoint from {source}')
        return checkpoint

    runner.load_checkpoint = load_checkpoint
    return state
