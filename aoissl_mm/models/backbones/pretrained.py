"""Loading pre-trained (self-supervised) weights into the AOI backbones.

Unregistered helpers shared by :class:`FasterViT` and :class:`AOIViT`:

* :func:`load_backbone_weights` reads a checkpoint (file or ``http(s)://`` URL)
  through :mod:`aoissl_mm.utils.checkpoint` (weights-only, its container
  rules), chooses the key prefix of the backbone (``backbone.``/``encoder.``/
  none), refuses checkpoints of another architecture with a message naming
  the mismatching keys (and, when the key names show it, saying that the
  checkpoint is of the other backbone: ``levels.N`` = FasterViT,
  ``pos_embed``/``blocks.N`` = ViT), and reports what was loaded.
* :func:`init_backbone_weights` implements ``init_weights()`` for an mmengine
  ``init_cfg`` that may contain ``dict(type='Pretrained', checkpoint=...,
  prefix=...)``; mmengine's ``PretrainedInit`` is deliberately not used (it
  loads non-strictly and silently).
"""
import logging
import re
from collections.abc import Mapping
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import MMLogger, print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from torch import nn

from aoissl_mm.utils.checkpoint import compare_state_dicts, extract_state_dict, safe_torch_load

__all__ = ['load_backbone_weights', 'init_backbone_weights']

# prefixes tried after the caller's prefix; '' = a raw backbone state dict
_FALLBACK_PREFIXES = ('backbone.', 'encoder.', '')
# backbone families recognised by their key names (for the error messages)
_FASTERVIT_KEY = re.compile(r'levels\.\d+\.')
_VIT_KEY = re.compile(r'blocks\.\d+\.')


def _strip(state: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    if not prefix:
        return dict(state)
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _architecture(keys: Sequence[str]) -> Optional[Tuple[str, str]]:
    """The backbone family that key names look like: ``(family, telling keys)`` or None.

    ``levels.N.`` keys: a FasterViT; ``pos_embed`` or ``blocks.N.`` keys: a ViT.
    """
    if any(_FASTERVIT_KEY.match(k) for k in keys):
        return 'FasterViT', 'levels.N'
    if 'pos_embed' in keys or any(_VIT_KEY.match(k) for k in keys):
        return 'ViT', 'pos_embed, blocks.N'
    return None


def _architecture_hint(state: Dict[str, torch.Tensor], prefixes: Sequence[str],
                       own: Sequence[str], name: str) -> str:
    """A sentence for the error messages when the checkpoint is of the other backbone.

    Args:
        state (Dict[str, torch.Tensor]): The checkpoint's full state dict.
        prefixes (Sequence[str]): Key prefixes to try, best first.
        own (Sequence[str]): The module's state-dict keys.
        name (str): The module's class name.

    Returns:
        str: ``"; the checkpoint's 'backbone.' keys look like a ViT ..."``, or
        ``''`` when the families agree or either is not recognised.
    """
    mine = _architecture(list(own))
    for p in prefixes:
        theirs = _architecture(list(_strip(state, p)))
        if theirs is None:
            continue
        if mine is None or theirs[0] == mine[0]:
            return ''
        return (f"; the checkpoint's {p!r} keys look like a {theirs[0]} checkpoint "
                f"({theirs[1]}), but the config's backbone is {name} ({mine[1]}): point "
                f"the backbone's Pretrained init_cfg at an SSL checkpoint of the same "
                f'backbone')
    return ''


def load_backbone_weights(
        module: nn.Module,
        path: str,
        prefix: str = 'backbone.',
        logger: Optional[Union[logging.Logger, str]] = None,
        allow_partial: bool = False
) -> Tuple[List[str], List[str], List[str]]:
    """Load the backbone tensors of a checkpoint into ``module``.

    The checkpoint may be a raw state dict or an mmengine/Lightning checkpoint
    (``{'state_dict': ...}``; the rules of
    :func:`~aoissl_mm.utils.checkpoint.extract_state_dict`). Its keys are
    stripped of ``prefix``; the prefixes ``'backbone.'``, ``'encoder.'`` and
    ``''`` (no prefix) are tried too, and the one matching most of the
    module's keys wins. If ``module`` has a ``convert_checkpoint(state_dict)``
    method it is applied to the stripped dict first (AOIViT uses it to resize
    a position table).

    Args:
        module (nn.Module): The backbone to load into.
        path (str): Checkpoint file or ``http(s)://`` URL; read weights-only.
        prefix (str): Prefix of the backbone keys in the checkpoint.
            Defaults to ``'backbone.'``.
        logger (logging.Logger | str, optional): Logger for the summary
            line; defaults to mmengine's current :class:`MMLogger`.
        allow_partial (bool): Accept a checkpoint that fills only part of
            the backbone (the rest keeps its initialisation, with a
            warning). Off by default: a checkpoint matching, say, only the
            position table would otherwise fine-tune from random weights.

    Returns:
        Tuple[List[str], List[str], List[str]]: ``(loaded, missing,
        unexpected)`` key names: tensors copied into the module, module
        tensors absent from the checkpoint, and checkpoint tensors (after
        prefix stripping) the module does not have.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RuntimeError: The file is not a weights-only checkpoint, or none of
            its keys matches the module under any tried prefix.
        ValueError: Some keys match but their shapes differ (a checkpoint of
            another architecture); every such key is named with the expected
            and found shapes. Or, without ``allow_partial``, some backbone
            tensors are missing from the checkpoint (nothing is loaded).
    """
    state = extract_state_dict(safe_torch_load(path, map_location='cpu'), path)
    own = module.state_dict()

    prefixes: List[str] = []
    for p in (prefix, *_FALLBACK_PREFIXES):
        if p not in prefixes:
            prefixes.append(p)
    best_prefix, best, best_hits = prefixes[0], {}, 0
    for p in prefixes:
        candidate = _strip(state, p)
        hits = sum(1 for k in candidate if k in own)
        if hits > best_hits:
            best_prefix, best, best_hits = p, candidate, hits
    name = type(module).__name__
    if best_hits == 0:
        raise RuntimeError(
            f'no tensor of checkpoint {path!r} matches a parameter of {name} '
            f'(tried key prefixes {prefixes}); checkpoint keys look like '
            f'{sorted(state)[:5]}, {name} expects e.g. {list(own)[:5]}'
            + _architecture_hint(state, prefixes, list(own), name))

    convert = getattr(module, 'convert_checkpoint', None)
    if callable(convert):
        best = convert(best)

    diff = compare_state_dicts(own, best)
    if diff.mismatched:
        raise ValueError(
            f'checkpoint {path!r} does not fit {name} (key prefix {best_prefix!r}); '
            f'shape mismatch for {len(diff.mismatched)} tensor(s): '
            + '; '.join(f'{k}: expected {m}, found {c}' for k, m, c in diff.mismatched)
            + _architecture_hint(state, [best_prefix], list(own), name))

    if diff.missing and not allow_partial:
        missing = sorted(diff.missing)
        raise ValueError(
            f'checkpoint {path!r} (key prefix {best_prefix!r}) fills only '
            f'{len(own) - len(missing)}/{len(own)} tensors of {name}; missing: '
            f'{missing[:10]}{" ..." if len(missing) > 10 else ""}. Nothing was loaded; set '
            f"allow_partial=True in the backbone's Pretrained init_cfg to fine-tune from a "
            f'partial checkpoint' + _architecture_hint(state, [best_prefix], list(own), name))
    matched = {k: v for k, v in best.items() if k in own}
    module.load_state_dict(matched, strict=False)
    loaded = sorted(matched)
    missing, unexpected = sorted(diff.missing), sorted(diff.unexpected)

    log = logger if logger is not None else MMLogger.get_current_instance()
    print_log(f'loaded {len(loaded)}/{len(own)} backbone parameter tensors from {path}',
              logger=log, level=logging.INFO)
    if missing:
        print_log(f'{name}: {len(missing)} tensor(s) not in {path}, left as initialised: '
                  f'{missing}', logger=log, level=logging.WARNING)
    if unexpected:
        print_log(f'{name}: ignored {len(unexpected)} checkpoint tensor(s) with prefix '
                  f'{best_prefix!r}: {unexpected[:20]}', logger=log, level=logging.WARNING)
    return loaded, missing, unexpected


def init_backbone_weights(module: BaseModule,
                          init_cfg: Union[dict, Sequence[dict], None]) -> None:
    """``init_weights()`` body for the AOI backbones.

    Non-``Pretrained`` entries go through mmengine's :func:`initialize`;
    ``dict(type='Pretrained', checkpoint=PATH, prefix='backbone.',
    allow_partial=False)`` entries are then loaded with
    :func:`load_backbone_weights` (so the checkpoint overrides any other
    initialiser).

    Args:
        module (BaseModule): The backbone.
        init_cfg (dict | Sequence[dict] | None): Its ``init_cfg``.

    Raises:
        ValueError: A ``Pretrained`` entry without ``checkpoint``, or an
            entry that is not a dict with a ``type``.
    """
    if init_cfg is None:
        return
    cfgs = [init_cfg] if isinstance(init_cfg, Mapping) else list(init_cfg)
    pretrained, others = [], []
    for cfg in cfgs:
        if not isinstance(cfg, Mapping) or 'type' not in cfg:
            raise ValueError(f'{type(module).__name__}: every init_cfg entry must be a dict '
                             f"with a 'type', got {cfg!r}")
        (pretrained if cfg['type'] == 'Pretrained' else others).append(dict(cfg))
    if others:
        initialize(module, others)
    for cfg in pretrained:
        if not cfg.get('checkpoint'):
            raise ValueError(f"{type(module).__name__}: init_cfg type='Pretrained' needs "
                             f"'checkpoint', got {cfg!r}")
        load_backbone_weights(module, cfg['checkpoint'], prefix=cfg.get('prefix', 'backbone.'),
                              allow_partial=bool(cfg.get('allow_partial', False)))
