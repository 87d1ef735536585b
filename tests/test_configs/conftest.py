"""Shared checks of the config tests."""
import os.path as osp
import re

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SELFSUP = osp.join(ROOT, 'configs', 'selfsup')


def _check_fixed_iteration_twin(twin: str, recipe: str, max_iters: int, warmup: int,
                               finetune: str, prefix: str = 'backbone.') -> Config:
    """Assert what a fixed-iteration twin of a time-budget SSL recipe must be.

    No TimeBudgetHook (nothing but the iterations drives the run), ``max_iters`` equal to the
    number in its name, a linear warm-up over the budget recipe's warm-up share of the
    iterations (``warmup``, by hand), then a cosine to the recipe's final LR ending at
    ``max_iters``, one checkpoint at ``max_iters``; the fine-tuning config ``finetune`` loads
    exactly the file that run writes, ``work_dirs/<twin stem>/iter_<max_iters>.pth``.

    Returns:
        Config: The twin.
    """
    from mmpretrain.registry import HOOKS

    from aoissl_mm.utils import setup_train_cfg
    path = osp.join(SELFSUP, twin)
    cfg = Config.fromfile(path)
    budget = Config.fromfile(osp.join(SELFSUP, recipe))
    stem = osp.splitext(twin)[0]
    assert re.search(r'_(\d+)it_', stem).group(1) == str(max_iters)  # e.g. _600it_
    hook_types = [h.type for h in cfg.custom_hooks]
    assert 'TimeBudgetHook' not in hook_types, hook_types
    for t in hook_types:
        assert HOOKS.get(t) is not None, t
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == max_iters
    # the warm-up share of the budget recipe, in iterations (rounded to the nearest)
    (budget_hook, ) = [h for h in budget.custom_hooks if h.type == 'TimeBudgetHook']
    assert warmup == round(budget_hook.warmup_share * max_iters)
    linear, cosine = cfg.param_scheduler
    assert (linear.type, linear.by_epoch, linear.begin, linear.end) == \
        ('LinearLR', False, 0, warmup)
    assert linear.start_factor == budget_hook.get('warmup_start_factor', 1e-3)
    assert (cosine.type, cosine.by_epoch, cosine.begin, cosine.end) == \
        ('CosineAnnealingLR', False, warmup, max_iters)
    assert cosine.eta_min == budget_hook.min_lr
    # everything else is the budget recipe's
    assert cfg.model == budget.model and cfg.optim_wrapper == budget.optim_wrapper
    assert cfg.train_dataloader == budget.train_dataloader
    # one checkpoint, at the end: iter_<max_iters>.pth (mmengine's name by iteration) in the
    # work dir tools/train.py gives the twin without --work-dir
    ckpt = cfg.default_hooks.checkpoint
    assert ckpt.by_epoch is False and ckpt.interval == max_iters
    assert ckpt.get('filename_tmpl') is None and cfg.get('work_dir') is None
    work_dir = setup_train_cfg(Config.fromfile(path), path).work_dir
    fine = Config.fromfile(osp.join(ROOT, 'configs', 'upernet', finetune))
    init = fine.model.backbone.init_cfg
    assert init.type == 'Pretrained' and init.prefix == prefix
    assert init.checkpoint == f'work_dirs/{stem}/iter_{max_iters}.pth'
    assert osp.normpath(init.checkpoint) == osp.normpath(
        osp.join(work_dir, f'iter_{max_iters}.pth'))
    assert init.get('allow_partial', False) is False
    return cfg


@pytest.fixture(scope='session')
def check_fixed_iteration_twin():
    """The function :func:`_check_fixed_iteration_twin`."""
    return _check_fixed_iteration_twin
