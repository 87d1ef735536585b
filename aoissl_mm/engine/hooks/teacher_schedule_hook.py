"""Teacher EMA momentum, teacher temperature and the iBOT patch-loss switch, by schedule share."""
import math
from typing import Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from .time_budget_hook import TimeBudgetHook


def cosine_momentum(share: float, base: float = 0.996, final: float = 1.0) -> float:
    """Teacher momentum on DINO's cosine: ``final - (final - base) * (1 + cos(pi s)) / 2``."""
    share = min(max(share, 0.0), 1.0)
    return final - (final - base) * 0.5 * (1.0 + math.cos(math.pi * share))


def warmup_temperature(share: float, start: float = 0.04, end: float = 0.07,
                       warmup_share: float = 0.3) -> float:
    """Teacher temperature: linear ``start -> end`` over ``warmup_share``, then ``end``."""
    if warmup_share <= 0:
        return end
    share = min(max(share, 0.0), 1.0)
    return start + (end - start) * min(share / warmup_share, 1.0)


def _pair(value: Sequence[float], name: str) -> Tuple[float, float]:
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ValueError(f'TeacherScheduleHook: {name!r} must be a (start, end) pair, '
                         f'got {value!r}')
    return float(value[0]), float(value[1])


@HOOKS.register_module()
class TeacherScheduleHook(Hook):
    """Drive the DINO / iBOT teacher by the progress share ``s`` of the schedule.

    - After every optimiser step: ``model.update_teacher(m(s))``, the EMA
      ``teacher <- m teacher + (1 - m) student`` with
      ``m(s) = m1 - (m1 - m0) (1 + cos(pi s)) / 2`` (``momentum=(m0, m1)``,
      0.996 -> 1).
    - Before every iteration: ``model.set_teacher_temp(tau(s))``, linear from
      ``teacher_temp[0]`` to ``teacher_temp[1]`` over the first
      ``temp_warmup_share`` of the schedule (0.04 -> 0.07 over 30 %: DINO's
      30 of 100 epochs), and ``model.set_progress(s)`` when the model has it
      (iBOT switches its patch loss on at its ``patch_loss_start``).

    ``s`` is the elapsed share of the run's :class:`TimeBudgetHook` when it
    has one (the budget configs set ``max_iters`` to 10^7, which a budget run
    never reaches), else ``iter / max_iters``; it is clipped to [0, 1].

    The averaging is written here (:meth:`DINO.update_teacher`) rather than
    taken from mmpretrain's ``CosineEMA``: that class derives its momentum
    from its own step count and the ``max_iters`` of the message hub (so
    under a time budget it would never move), copies instead of averaging on
    its first update, and copies (does not average) buffers such as
    BatchNorm statistics unless it averages every buffer.

    Args:
        momentum (Sequence[float]): ``(start, end)`` teacher momentum (weight
            of the OLD teacher). Defaults to (0.996, 1.0).
        teacher_temp (Sequence[float]): ``(start, end)`` teacher temperature.
            Defaults to (0.04, 0.07).
        temp_warmup_share (float): Share of the schedule over which the
            temperature rises, in [0, 1]. Defaults to 0.3.
    """

    priority = 'NORMAL'

    def __init__(self,
                 momentum: Sequence[float] = (0.996, 1.0),
                 teacher_temp: Sequence[float] = (0.04, 0.07),
                 temp_warmup_share: float = 0.3) -> None:
        self.momentum = _pair(momentum, 'momentum')
        if not all(0.0 <= m <= 1.0 for m in self.momentum):
            raise ValueError(f"TeacherScheduleHook: 'momentum' values must be in [0, 1], "
                             f'got {momentum!r}')
        self.teacher_temp = _pair(teacher_temp, 'teacher_temp')
        if not all(t > 0 for t in self.teacher_temp):
            raise ValueError(f"TeacherScheduleHook: 'teacher_temp' values must be > 0, "
                             f'got {teacher_temp!r}')
        if not 0.0 <= float(temp_warmup_share) <= 1.0:
            raise ValueError(f"TeacherScheduleHook: 'temp_warmup_share' must be in [0, 1], "
                             f'got {temp_warmup_share!r}')
        self.temp_warmup_share = float(temp_warmup_share)

    # ------------------------------------------------------------ schedules
    def momentum_at(self, share: float) -> float:
        """Teacher momentum at progress share ``share``."""
        return cosine_momentum(share, *self.momentum)

    def temperature_at(self, share: float) -> float:
        """Teacher temperature at progress share ``share``."""
        return warmup_temperature(share, *self.teacher_temp, self.temp_warmup_share)

    @staticmethod
    def progress(runner, iters_done: int) -> float:
        """Schedule share: the :class:`TimeBudgetHook`'s elapsed share, else iterations."""
        budget: Optional[TimeBudgetHook] = next(
            (h for h in runner.hooks if isinstance(h, TimeBudgetHook)), None)
        if budget is not None:
            share = budget.share
        else:
            share = iters_done / max(int(runner.max_iters), 1)
        return min(max(float(share), 0.0), 1.0)

    @staticmethod
    def _model(runner):
        model = runner.model
        model = model.module if is_model_wrapper(model) else model
        for name in ('update_teacher', 'set_teacher_temp'):
            if not callable(getattr(model, name, None)):
                raise TypeError(f'TeacherScheduleHook needs a DINO/iBOT model with {name}(), '
                                f'got {type(model).__name__}')
        return model

    # ---------------------------------------------------------------- hooks
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Set the teacher temperature (and iBOT's patch-loss switch) for this iteration."""
        model = self._model(runner)
        share = self.progress(runner, runner.iter)
        temp = self.temperature_at(share)
        model.set_teacher_temp(temp)
        if callable(getattr(model, 'set_progress', None)):
            model.set_progress(share)
        runner.message_hub.update_scalar('train/teacher_temp', temp)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """EMA-update the teacher once the optimiser has stepped."""
        wrapper = runner.optim_wrapper
        should_update = getattr(wrapper, 'should_update', None)
        if callable(should_update) and not should_update():
            return  # gradient accumulation: no optimiser step this iteration
        model = self._model(runner)
        momentum = self.momentum_at(self.progress(runner, runner.iter + 1))
        model.update_teacher(momentum)
        runner.message_hub.update_scalar('train/teacher_momentum', momentum)
