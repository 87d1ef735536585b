"""Build, extend and describe retrieval memories from a config (behind ``tools/memory.py``)."""
import copy
import json
import logging
import os.path as osp
import time
from typing import Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from ..engine.hooks.retrieval_memory_hook import memory_loader_cfg
from ..models.retrieval import PatchMemory
from ..utils.checkpoint import check_state_dict_matches, extract_state_dict, safe_torch_load
from ..utils.runner_setup import check_dataset_classes, load_config


def init_retrieval_model(config: str,
                         checkpoint: Optional[str] = None,
                         cfg_options: Optional[dict] = None,
                         device: str = 'cpu') -> Tuple[torch.nn.Module, Config]:
    """Build a ``RetrievalSegmentor`` from a config and load its backbone.

    Args:
        config (str): A retrieval config file.
        checkpoint (str, optional): Any checkpoint holding the backbone (SSL,
            fine-tuned or bare); its other tensors are ignored. None is
            accepted only when the config's backbone is set by ``init_cfg``
            or random on purpose (``model.random_backbone=True``).
        cfg_options (dict, optional): ``--cfg-options`` overrides (checked).
        device (str): Where the backbone runs. Defaults to ``'cpu'``.

    Returns:
        tuple: The model (eval mode, ``class_names`` from the dataset) and
        the loaded config.

    Raises:
        TypeError: The config's model is not a ``RetrievalSegmentor``.
        ValueError: No checkpoint where one is needed, or one whose backbone
            keys do not match.
    """
    from mmseg.registry import MODELS
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if cfg.model.get('type') != 'RetrievalSegmentor':
        raise TypeError(f'{config}: model.type must be RetrievalSegmentor, got '
                        f"{cfg.model.get('type')}")
    check_dataset_classes(cfg, fill_class_names=True)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if checkpoint is None:
        if model.needs_checkpoint:
            raise ValueError(f'{config}: a checkpoint holding the backbone is required (the '
                             'config neither loads it by init_cfg nor sets random_backbone=True)')
    else:
        state = model.filter_checkpoint_state(
            extract_state_dict(safe_torch_load(checkpoint), checkpoint), checkpoint)
        check_state_dict_matches(model, state, checkpoint)
        model.load_state_dict(state, strict=True)
    return model.to(device).eval(), cfg


def memory_dataloader_cfg(cfg: Config,
                          data_root: Optional[str] = None,
                          split: Optional[str] = None) -> dict:
    """The memory dataloader of a retrieval config, optionally on other labelled images.

    Args:
        cfg (Config): A retrieval config with a ``RetrievalMemoryHook``.
        data_root (str, optional): Another root in the AOI layout
            (``images/<split>``, ``labels/<split>``), e.g. a new device's.
            Nothing is generated into it.
        split (str, optional): The split folder. Defaults to the config's.

    Returns:
        dict: A dataloader config (a copy); the hook's ``whole_images=True``
        leaves its ``PadCenterCrop`` out, as the hook does.
    """
    hooks = [h for h in cfg.get('custom_hooks') or [] if h.get('type') == 'RetrievalMemoryHook']
    if not hooks or not hooks[0].get('dataloader'):
        raise KeyError('the config has no custom_hooks entry RetrievalMemoryHook with a '
                       'dataloader (the labelled images a memory is built from)')
    loader = memory_loader_cfg(hooks[0]['dataloader'], bool(hooks[0].get('whole_images')))
    dataset = loader['dataset']
    if data_root is not None:
        if not osp.isdir(data_root):
            raise FileNotFoundError(f'--data-root: no such directory {data_root}')
        dataset['data_root'] = data_root
        dataset.pop('synthetic', None)  # never generate into a user's folder
    if split is not None:
        dataset['data_prefix'] = dict(img_path=f'images/{split}', seg_map_path=f'labels/{split}')
    return loader


def build_memory(model: torch.nn.Module, loader_cfg: dict, out_dir: Optional[str] = None,
                 progress: bool = True) -> PatchMemory:
    """Build a new memory from a dataloader config and save it (atomically) if asked."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(copy.deepcopy(loader_cfg))
    memory = model.build_memory(loader, progress=progress)
    if out_dir is not None:
        memory.save(out_dir)
        print_log(f'memory saved to {out_dir}', logger='current', level=logging.INFO)
    return memory


def add_to_memory(model: torch.nn.Module, memory_dir: str, loader_cfg: dict,
                  progress: bool = True) -> Tuple[int, float]:
    """Add a dataloader's labelled images to a saved memory; the old entries stay as they are.

    Args:
        model (nn.Module): The retrieval segmentor the memory was built with
            (its metadata is checked: backbone weights, patch, keys, classes).
        memory_dir (str): The saved memory; rewritten atomically.
        loader_cfg (dict): Dataloader config of the images to add.
        progress (bool): Progress bar. Defaults to True.

    Returns:
        tuple[int, float]: Entries added and seconds taken (feature
        extraction, indexing and saving).

    Raises:
        ValueError: The saved memory is corrupted (its files' SHA-256 are
            always verified here, whatever ``memory.verify`` says) or does
            not match the model; nothing is written then.
    """
    from mmengine.runner import Runner
    start = time.perf_counter()
    memory = model.load_memory(memory_dir, verify=True)  # never re-save corrupted entries
    before = len(memory)
    loader = Runner.build_dataloader(copy.deepcopy(loader_cfg))
    model.build_memory(loader, memory=memory, progress=progress)
    memory.save(memory_dir)
    return len(memory) - before, time.perf_counter() - start


def describe_memory(memory_dir: str, verify: bool = True) -> str:
    """What a saved memory holds, as text (its ``memory.json`` and index summary).

    Args:
        memory_dir (str): The saved memory.
        verify (bool): Check its files' SHA-256 first. Defaults to True.
    """
    memory = PatchMemory.load(memory_dir, device='cpu', verify=verify)
    info = memory.info()
    lines = [f'memory {memory_dir}' + ('' if verify else ' (files not verified)')]
    for key, value in info.items():
        if key == 'metadata':
            continue
        lines.append(f'  {key}: {value}')
    for key, value in memory.metadata.items():
        text = json.dumps(value) if not isinstance(value, str) else value
        lines.append(f'  metadata.{key}: {text[:200]}')
    return '\n'.join(lines)
