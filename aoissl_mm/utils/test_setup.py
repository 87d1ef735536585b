"""Test-time setup behind ``tools/test.py``: its flags applied to a config (mmseg's
semantics) and the weights of the model under test (a checked checkpoint, or a retrieval
model's own ``init_cfg``)."""
import os.path as osp
from typing import Any, Optional

from mmengine.config import Config

from .checkpoint import is_url, preload_checkpoint
from .runner_setup import _set_launcher_and_work_dir, check_dataset_classes


def _check_runs_without_checkpoint(cfg: Config) -> None:
    """Only a retrieval config whose backbone is random on purpose or set by init_cfg."""
    model = cfg.model
    if model.get('type') == 'RetrievalSegmentor' and (
            model.get('random_backbone') or model.get('backbone', {}).get('init_cfg')):
        return
    raise ValueError('a checkpoint is required: only a RetrievalSegmentor config whose '
                     'backbone is loaded by model.backbone.init_cfg or is random on purpose '
                     '(model.random_backbone=True) runs without one')


def load_test_weights(runner: Any, checkpoint: Optional[str]) -> str:
    """Give the model under test its weights, before ``runner.test()``.

    A checkpoint is read once and checked strictly
    (:func:`~.checkpoint.preload_checkpoint`); the Runner loads it. Without
    one (only a retrieval config whose backbone is set by ``init_cfg`` or
    random on purpose, see :func:`setup_test_cfg`) the model's
    ``init_without_checkpoint()`` runs here and logs which initialisation is
    used: mmengine's ``Runner.test()`` never calls ``init_weights()``, so an
    ``init_cfg`` checkpoint would otherwise silently not be loaded.

    Args:
        runner (mmengine.runner.Runner): The built test runner.
        checkpoint (str, optional): ``tools/test.py``'s checkpoint argument.

    Returns:
        str: What the weights come from.
    """
    if checkpoint is not None:
        preload_checkpoint(runner, checkpoint)
        return f'checkpoint {checkpoint}'
    model = runner.model
    while hasattr(model, 'module'):  # DDP and TTA wrappers
        model = model.module
    if not hasattr(model, 'init_without_checkpoint'):
        raise ValueError(f'a checkpoint is required to test a {type(model).__name__}')
    return model.init_without_checkpoint()


def setup_test_cfg(cfg: Config,
                   config_path: str,
                   checkpoint: Optional[str],
                   work_dir: Optional[str] = None,
                   out: Optional[str] = None,
                   show: bool = False,
                   show_dir: Optional[str] = None,
                   wait_time: float = 2.0,
                   tta: bool = False,
                   launcher: str = 'none') -> Config:
    """Apply ``tools/test.py`` flags to ``cfg`` (mmseg's semantics).

    ``--show-dir`` turns on the multi-label visualization hook and saves the
    overlays there; ``--out`` writes bit-mask PNG predictions.
    """
    check_dataset_classes(cfg, fill_class_names=True)
    _set_launcher_and_work_dir(cfg, config_path, work_dir, launcher)
    if checkpoint is None:
        _check_runs_without_checkpoint(cfg)
    # a URL is checked when it is read (aoissl_mm.utils.checkpoint)
    elif not is_url(checkpoint) and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    cfg.load_from = checkpoint
    if show or show_dir:
        hooks = cfg.get('default_hooks', {})
        if 'visualization' not in hooks:
            raise KeyError("--show/--show-dir need default_hooks.visualization "
                           "(e.g. dict(type='MultiLabelVisualizationHook'))")
        hooks.visualization.draw = True
        if show:
            hooks.visualization.show = True
            hooks.visualization.wait_time = wait_time
        if show_dir:
            cfg.visualizer.save_dir = show_dir
    if tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise KeyError('--tta needs tta_model and tta_pipeline in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if out is not None:
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    return cfg
