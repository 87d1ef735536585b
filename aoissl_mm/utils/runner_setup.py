"""Turn command-line flags into an mmengine config, the way mmseg's tools do.

The functions here are what ``tools/train.py`` and ``tools/test.py`` call; they
add three things to mmseg's scripts: ``import aoissl_mm`` before anything is
built, automatic AMP when CUDA is present, and early, clear errors for config
keys that do not exist.
"""
import logging
import os.path as osp
from typing import Iterable, List, Optional, Tuple

import torch
from mmengine.config import Config


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Load a config, apply ``--cfg-options`` and make sure ``aoissl_mm`` is imported."""
    import aoissl_mm  # noqa: F401  (registers everything, applies the compat shims)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        check_config_keys(cfg, cfg_options.keys())
        cfg.merge_from_dict(cfg_options)
    imports = cfg.get('custom_imports', dict(imports=[]))
    names = imports.get('imports', [])
    names = [names] if isinstance(names, str) else list(names)
    if 'aoissl_mm' not in names:
        cfg.custom_imports = dict(imports=names + ['aoissl_mm'], allow_failed_imports=False)
    return cfg


def _accepted_args(type_name) -> Optional[set]:
    """Constructor arguments of a registered type, or None if it takes **kwargs."""
    import inspect

    from mmengine.registry import Registry
    from mmpretrain import registry as pre_reg
    from mmseg import registry as seg_reg
    if not isinstance(type_name, str):
        cls = type_name
    else:
        name = type_name.split('.')[-1]
        cls = None
        for mod in (seg_reg, pre_reg):
            for reg in vars(mod).values():
                if isinstance(reg, Registry) and name in reg.module_dict:
                    cls = reg.module_dict[name]
                    break
            if cls is not None:
                break
        if cls is None:
            return None
    # follow **kwargs up the MRO (heads pass most arguments to BaseDecodeHead)
    accepted = set()
    for klass in getattr(cls, '__mro__', (cls, )):
        if klass is object:
            return None
        if '__init__' not in vars(klass):
            continue
        try:
            params = list(inspect.signature(klass.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            return None
        accepted |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return accepted
    return None


# Top-level keys mmengine 0.10.7's Runner reads with ``cfg.get`` (``Runner.from_cfg``, and
# ``self.cfg.get`` in ``wrap_model``, ``train``, ``_maybe_compile``...), plus the ones the
# aoissl_mm tools read; a config may leave any of them out, so --cfg-options may add them.
RUNNER_TOP_LEVEL_KEYS = frozenset({
    # Runner.from_cfg
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
    'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler', 'val_evaluator',
    'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from',
    'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer',
    'default_scope', 'randomness', 'experiment_name',
    # read from self.cfg by the Runner's methods
    'model_wrapper_cfg', 'sync_bn', 'find_unused_parameters', 'activation_checkpointing',
    'efficient_conv_bn_eval', 'compile',
    # aoissl_mm: tools/train.py, setup_train_cfg, setup_test_cfg
    'runner_type', 'amp_if_cuda', 'cpu_recipe', 'tta_model', 'tta_pipeline',
})


def check_config_keys(cfg: Config, keys: Iterable[str]) -> None:
    """Refuse ``--cfg-options`` keys that do not exist (``merge_from_dict`` would add them).

    Every intermediate key must exist. A new leaf is accepted only inside a
    dict whose registered ``type`` takes that argument (checked against the
    constructor signature) or takes ``**kwargs``. A top-level key the runner
    reads although the config may lack it (:data:`RUNNER_TOP_LEVEL_KEYS`,
    e.g. ``find_unused_parameters``, ``model_wrapper_cfg``, ``compile``) is
    accepted, and so is anything below it when the config lacks it (there is
    nothing to check it against). The error names the key.
    """
    for key in keys:
        parts = key.split('.')
        if parts[0] in RUNNER_TOP_LEVEL_KEYS and parts[0] not in cfg:
            continue
        node = cfg
        for i, part in enumerate(parts):
            where = '.'.join(parts[:i]) or 'the config'
            if isinstance(node, (list, tuple)):
                if not part.isdigit() or int(part) >= len(node):
                    raise KeyError(f'--cfg-options key {key!r}: {where} is a list of '
                                   f'{len(node)} items; {part!r} is not a valid index')
                node = node[int(part)]
                continue
            if not hasattr(node, 'keys'):
                raise KeyError(f'--cfg-options key {key!r}: {where} is a '
                               f'{type(node).__name__}, not a dict')
            if part in node:
                node = node[part]
                continue
            if i == len(parts) - 1 and i > 0:
                accepted = _accepted_args(node['type']) if 'type' in node else None
                if accepted is None or part in accepted:
                    break
                raise KeyError(f'--cfg-options key {key!r}: {node["type"]} has no argument '
                               f'{part!r} (accepted: {", ".join(sorted(accepted))})')
            near = ', '.join(sorted(map(str, node.keys()))[:30])
            raise KeyError(f'--cfg-options key {key!r}: {part!r} is not a key of {where} '
                           f'(keys: {near})')


def _memory_dataloaders(cfg: Config) -> List[Tuple[str, dict]]:
    """The dataloaders of ``RetrievalMemoryHook`` entries in ``custom_hooks``."""
    return [(f'custom_hooks[{i}].dataloader', hook['dataloader'])
            for i, hook in enumerate(cfg.get('custom_hooks') or [])
            if isinstance(hook, dict) and hook.get('dataloader')]


def check_dataset_classes(cfg: Config, fill_class_names: bool = False) -> Optional[tuple]:
    """The model's classes must be the datasets' classes.

    Checked before anything is built: the number of classes of the model
    (``model.decode_head.num_classes``, or ``model.num_classes`` for a
    segmentor without a decode head, e.g. ``RetrievalSegmentor``) must equal
    the number of classes of every dataloader's dataset (its
    ``metainfo.classes``, else the dataset type's ``METAINFO``; the memory
    dataloader of a ``RetrievalMemoryHook`` included), and the model's
    ``class_names``, when set, must be those classes in that order. The
    class names live in one place, the dataset; with ``fill_class_names`` a
    model without ``class_names`` gets the dataset's (they name its logged
    per-class accuracies and a retrieval memory's classes).

    Args:
        cfg (Config): The full config (changed in place when filling).
        fill_class_names (bool): Set ``class_names`` from the dataset when
            the config does not. Defaults to False.

    Returns:
        tuple | None: The datasets' classes, None if no dataset names any.

    Raises:
        ValueError: A count or a name differs; the message names the split.
    """
    from mmseg.registry import DATASETS
    if 'model' not in cfg:
        return None
    model = cfg.model.get('module', cfg.model) if cfg.model.get('type', '').endswith(
        'TTAModel') else cfg.model
    owner, where = model.get('decode_head'), 'model.decode_head'
    if not owner:
        owner, where = model, 'model'
    if not owner or 'num_classes' not in owner:
        return None
    num_classes = owner['num_classes']
    head_names = owner.get('class_names')
    found = None
    loaders = [(f'{split}_dataloader', cfg.get(f'{split}_dataloader'))
               for split in ('train', 'val', 'test')] + _memory_dataloaders(cfg)
    for split, loader in loaders:
        if not loader or 'dataset' not in loader:
            continue
        dataset = loader['dataset']
        classes = (dataset.get('metainfo') or {}).get('classes')
        if classes is None:
            dataset_cls = DATASETS.get(dataset.get('type', ''))
            classes = getattr(dataset_cls, 'METAINFO', {}).get('classes')
        if classes is None:
            continue
        if len(classes) != num_classes:
            raise ValueError(
                f'{where}.num_classes = {num_classes} but '
                f'{split}.dataset has {len(classes)} classes {tuple(classes)}; '
                f'set num_classes (and out_channels, class_names) to match the dataset')
        if head_names is not None and tuple(head_names) != tuple(classes):
            raise ValueError(
                f'{where}.class_names {tuple(head_names)} differ from the classes '
                f'of {split}.dataset {tuple(classes)} (same names, same order)')
        found = tuple(classes)
    if fill_class_names and found is not None and head_names is None:
        owner['class_names'] = found
    return found


def resolve_dist_backend(cfg: Config) -> Optional[str]:
    """The process-group backend for the device: ``gloo`` instead of ``nccl`` without CUDA.

    The runtime configs name ``nccl`` (the backend for GPUs); NCCL needs CUDA,
    so a distributed run (``cfg.launcher`` other than ``'none'``) on a machine
    without it gets ``gloo``, with one log line. Any other backend the config
    names, and every run with CUDA, is left as it is.

    Args:
        cfg (Config): The config (``env_cfg.dist_cfg.backend`` changed in place).

    Returns:
        str | None: The backend the run will use, None for a run that is not
        distributed.
    """
    from mmengine.logging import print_log
    if cfg.get('launcher', 'none') == 'none':
        return None
    env_cfg = cfg.setdefault('env_cfg', dict())
    dist_cfg = env_cfg.setdefault('dist_cfg', dict())
    backend = dist_cfg.setdefault('backend', 'nccl')
    if backend == 'nccl' and not torch.cuda.is_available():
        dist_cfg['backend'] = backend = 'gloo'
        print_log("No CUDA device: distributed training uses the 'gloo' backend (the config "
                  "names 'nccl')", logger='current', level=logging.INFO)
    return backend


def _set_launcher_and_work_dir(cfg: Config, config_path: str, work_dir: Optional[str],
                               launcher: str) -> None:
    """mmseg's rule: ``--work-dir``, else the config's, else ``work_dirs/<config stem>``.

    Also picks the distributed backend for the device (:func:`resolve_dist_backend`).
    """
    cfg.launcher = launcher
    resolve_dist_backend(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def _maybe_amp(cfg: Config, force_amp: bool) -> None:
    want = force_amp or (cfg.get('amp_if_cuda', True) and torch.cuda.is_available())
    if not want:
        return
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        return
    if wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
        raise ValueError(f"AMP needs optim_wrapper.type 'OptimWrapper', got {wrapper.type!r}")
    wrapper.type = 'AmpOptimWrapper'
    wrapper.setdefault('loss_scale', 'dynamic')
    wrapper.setdefault('dtype', 'float16')


def warn_if_cpu_only(cfg: Config) -> Optional[str]:
    """One clear line when a GPU-sized config is started on a machine without CUDA.

    A config that sets ``cpu_recipe`` (the paper-protocol configs: 8-hour
    budget, 512² crops, batch 32-100) names the config to use on a CPU; on a
    machine without CUDA this logs, before anything is built, that the run
    will be slow (the paper protocol measured 86 s per iteration on 2 cores)
    and the command to run instead. The run itself is not changed: the user
    asked for this config.

    Args:
        cfg (Config): The training config.

    Returns:
        str | None: The message logged, None when nothing was said.
    """
    from mmengine.logging import print_log
    recipe = cfg.get('cpu_recipe')
    if not recipe or torch.cuda.is_available():
        return None
    message = (f'No CUDA device: this config is the paper protocol, sized for a GPU (the '
               f'FasterViT-0 one measured 86 s per iteration on 2 CPU cores). On a CPU use its '
               f'CPU recipe instead: python tools/train.py {recipe}')
    print_log(message, logger='current', level=logging.WARNING)
    return message


def setup_train_cfg(cfg: Config,
                    config_path: str,
                    work_dir: Optional[str] = None,
                    resume: Optional[str] = None,
                    amp: bool = False,
                    launcher: str = 'none') -> Config:
    """Apply ``tools/train.py`` flags to ``cfg`` (mmseg's semantics).

    Args:
        cfg: The loaded config.
        config_path: Its path (the default work dir is ``work_dirs/<stem>``).
        work_dir: ``--work-dir``.
        resume: ``--resume``: ``'auto'`` resumes from the latest checkpoint in
            the work dir, a path resumes from that file.
        amp: ``--amp`` (AMP is also switched on automatically when CUDA is
            present, unless the config sets ``amp_if_cuda=False``).
        launcher: ``--launcher``.
    """
    check_dataset_classes(cfg, fill_class_names=True)
    warn_if_cpu_only(cfg)
    _set_launcher_and_work_dir(cfg, config_path, work_dir, launcher)
    _maybe_amp(cfg, amp)
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
        _check_last_checkpoint(cfg.work_dir)
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {resume}')
        cfg.resume = True
        cfg.load_from = resume
    return cfg


def _check_last_checkpoint(work_dir: str) -> None:
    """``--resume`` (auto): a ``last_checkpoint`` file must name an existing checkpoint.

    mmengine would otherwise try to load an empty or stale name and fail with a bare
    "file not found". No ``last_checkpoint`` at all means a fresh start, as in mmengine.
    """
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        return
    with open(last, encoding='utf-8') as f:
        target = f.read().strip()
    if not target or not osp.isfile(target):
        raise FileNotFoundError(
            f'--resume: {last} names {target!r}, which is not a file (an interrupted write '
            'or a removed checkpoint); pass the checkpoint to resume from: --resume <file>')
