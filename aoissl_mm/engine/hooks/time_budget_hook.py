"""Train for a fixed wall-clock budget with a time-driven warm-up + cosine schedule."""
import math
import os.path as osp
import time
from typing import Optional

import torch
from mmengine.dist import broadcast, get_comm_device, get_world_size
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS
from mmseg.registry import HOOKS

from ...utils.atomic_io import atomic_write_text

_INFO_KEY = 'time_budget_elapsed_s'


@HOOKS.register_module()
@PRETRAIN_HOOKS.register_module()
class TimeBudgetHook(Hook):
    """Give a run a wall-clock budget and anneal the learning rate over it.

    The paper trains every model for the same 8 hours. Instead of guessing an
    epoch count, this hook measures elapsed training time ``t`` and, before
    every iteration, sets each parameter group's learning rate from the
    elapsed share ``s = t / budget``::

        s < w:   lr = base * (f0 + (1 - f0) * s / w)             (linear warm-up)
        s >= w:  lr = min_lr + (base - min_lr) * (1 + cos(pi * (s - w) / (1 - w))) / 2

    where ``base`` is the group's own initial learning rate (so layer-wise
    decay is kept) and ``f0`` the warm-up's start factor (1e-3, as the
    ``LinearLR`` of the fixed-iteration twins, so the first iteration does not
    run at LR 0). When ``s >= 1`` training stops, so every run ends annealed.
    **Time spent in validation is not counted**: a run lasts the budget plus
    its validations (the log says how long they took). The elapsed time is
    stored in the message hub and therefore survives ``--resume``. The
    remaining budget is published as :attr:`remaining_s`, which
    :class:`BudgetIterTimerHook` logs as the ETA (the ``max_iters`` of a
    budgeted config is only an upper bound, so mmengine's ETA would read
    "266 days").

    Use it with ``IterBasedTrainLoop`` (``max_iters`` is then only an upper
    bound) and no learning-rate ``param_scheduler``.

    Args:
        budget_s (float, optional): Budget in seconds.
        budget_h (float, optional): Budget in hours (alternative to ``budget_s``).
        warmup_share (float): Share of the budget spent warming up. Defaults to
            0.05 (5 of 100 epochs, spec §7.3).
        min_lr (float): Final learning rate. Defaults to 5e-7.
        warmup_start_factor (float): LR factor at the start of the warm-up,
            in (0, 1]. Defaults to 1e-3.
    """

    priority = 'HIGH'

    def __init__(self,
                 budget_s: Optional[float] = None,
                 budget_h: Optional[float] = None,
                 warmup_share: float = 0.05,
                 min_lr: float = 5e-7,
                 warmup_start_factor: float = 1e-3) -> None:
        if (budget_s is None) == (budget_h is None):
            raise ValueError('TimeBudgetHook: give exactly one of budget_s or budget_h')
        self.budget_s = float(budget_s if budget_s is not None else budget_h * 3600.0)
        if self.budget_s <= 0:
            raise ValueError(f'TimeBudgetHook: the budget must be > 0 s, got {self.budget_s}')
        if not 0.0 <= warmup_share < 1.0:
            raise ValueError(f'TimeBudgetHook: warmup_share must be in [0, 1), got {warmup_share}')
        if not 0.0 < warmup_start_factor <= 1.0:
            raise ValueError('TimeBudgetHook: warmup_start_factor must be in (0, 1], got '
                             f'{warmup_start_factor}')
        self.warmup_share = warmup_share
        self.min_lr = min_lr
        self.warmup_start_factor = float(warmup_start_factor)
        self._val_s = 0.0
        self._val_tic: Optional[float] = None
        self._elapsed = 0.0
        self._tic: Optional[float] = None
        self._last_share = 0.0

    # -- schedule ---------------------------------------------------------
    def lr_factor(self, share: float, base_lr: float) -> float:
        """The learning rate for a group whose initial LR is ``base_lr``."""
        share = min(max(share, 0.0), 1.0)
        w = self.warmup_share
        if w > 0 and share < w:
            f0 = self.warmup_start_factor
            return base_lr * (f0 + (1.0 - f0) * share / w)
        progress = (share - w) / (1.0 - w)
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    @property
    def share(self) -> float:
        """Elapsed share of the budget, identical on every rank (rank 0's clock)."""
        running = time.perf_counter() - self._tic if self._tic is not None else 0.0
        share = (self._elapsed + running) / self.budget_s
        if get_world_size() > 1:  # one clock for all ranks: same LR, same stop iteration
            value = torch.tensor([share], dtype=torch.float64, device=get_comm_device())
            broadcast(value, src=0)
            share = float(value.item())
        return share

    @property
    def remaining_s(self) -> float:
        """Training seconds left in the budget (validation excluded), >= 0."""
        running = time.perf_counter() - self._tic if self._tic is not None else 0.0
        return max(self.budget_s - self._elapsed - running, 0.0)

    def _optimizers(self, runner):
        wrapper = runner.optim_wrapper
        if hasattr(wrapper, 'optim_wrappers'):  # OptimWrapperDict
            return [w.optimizer for w in wrapper.optim_wrappers.values()]
        return [wrapper.optimizer]

    # -- hook points --------------------------------------------------------
    def before_train(self, runner) -> None:
        self._elapsed = float(runner.message_hub.get_info(_INFO_KEY, 0.0))
        for optimizer in self._optimizers(runner):
            for group in optimizer.param_groups:
                group.setdefault('initial_lr', group['lr'])
        runner.logger.info(
            f'TimeBudgetHook: budget {self.budget_s / 3600:.3f} h '
            f'({self.budget_s:.0f} s) of training time, warm-up share {self.warmup_share}, '
            f'{self._elapsed:.0f} s already spent; validation is not counted in the budget')
        self._tic = time.perf_counter()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._tic is None:
            self._tic = time.perf_counter()
        share = self.share
        for optimizer in self._optimizers(runner):
            for group in optimizer.param_groups:
                group['lr'] = self.lr_factor(share, group['initial_lr'])

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        share = self.share
        self._last_share = share
        runner.message_hub.update_info(_INFO_KEY, share * self.budget_s, resumed=True)
        runner.message_hub.update_scalar('train/budget_share', min(share, 1.0))
        if share >= 1.0 and not runner.train_loop.stop_training:
            runner.logger.info(f'TimeBudgetHook: budget of {self.budget_s:.0f} s reached at '
                               f'iteration {runner.iter + 1}; stopping (LR annealed to '
                               f'{self.min_lr:g}).')
            runner.train_loop.stop_training = True

    def _pause(self) -> None:
        if self._tic is not None:
            self._elapsed += time.perf_counter() - self._tic
            self._tic = None

    def before_val(self, runner) -> None:
        self._pause()
        self._val_tic = time.perf_counter()

    def after_val(self, runner) -> None:
        now = time.perf_counter()
        if self._val_tic is not None:
            took = now - self._val_tic
            self._val_s += took
            runner.logger.info(f'TimeBudgetHook: validation took {took:.0f} s (not counted in '
                               f'the budget; {self._val_s:.0f} s of validation so far)')
            self._val_tic = None
        self._tic = now

    def after_train(self, runner) -> None:
        """After a budget stop: validate the final (annealed) model and save it.

        The loop's own validation and ``CheckpointHook`` fire on fixed
        intervals and at ``max_iters``, which a budget stop never reaches.
        """
        self._pause()
        if not self._stopped_by_budget(runner):
            return
        val_interval = getattr(runner.train_loop, 'val_interval', None)
        if runner.val_loop is not None and val_interval and runner.iter % val_interval:
            runner.val_loop.run()
        filename = f'iter_{runner.iter}.pth'
        runner.save_checkpoint(runner.work_dir, filename)
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'),
                   osp.join(runner.work_dir, filename))
        runner.logger.info(f'TimeBudgetHook: saved the final model to '
                           f'{osp.join(runner.work_dir, filename)}')

    def _stopped_by_budget(self, runner) -> bool:
        return bool(runner.train_loop.stop_training) and self._last_share >= 1.0

