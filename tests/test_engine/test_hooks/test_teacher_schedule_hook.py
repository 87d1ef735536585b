"""TeacherScheduleHook: momentum cosine, temperature warm-up, progress share, call order."""
import math
from types import SimpleNamespace

import pytest
from mmengine.logging import MessageHub

from aoissl_mm.engine.hooks import TeacherScheduleHook, TimeBudgetHook
from aoissl_mm.engine.hooks.teacher_schedule_hook import cosine_momentum, warmup_temperature


@pytest.mark.parametrize('share,expected', [
    (0.0, 0.996),
    (0.25, 1 - 0.004 * (1 + math.cos(math.pi / 4)) / 2),
    (0.5, 0.998),
    (0.75, 1 - 0.004 * (1 + math.cos(3 * math.pi / 4)) / 2),
    (1.0, 1.0),
    (1.7, 1.0),  # clipped past the end
])
def test_momentum_follows_the_cosine(share, expected):
    hook = TeacherScheduleHook()
    assert hook.momentum_at(share) == pytest.approx(expected, abs=1e-12)
    assert cosine_momentum(share) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize('share,expected', [
    (0.0, 0.04), (0.075, 0.0475), (0.15, 0.055), (0.3, 0.07), (0.6, 0.07), (1.0, 0.07),
])
def test_teacher_temperature_warms_up_over_30_percent(share, expected):
    assert TeacherScheduleHook().temperature_at(share) == pytest.approx(expected, abs=1e-12)
    assert warmup_temperature(share) == pytest.approx(expected, abs=1e-12)
    assert warmup_temperature(share, 0.04, 0.07, 0.0) == 0.07


class FakeModel:

    def __init__(self):
        self.calls = []

    def update_teacher(self, momentum):
        self.calls.append(('ema', momentum))

    def set_teacher_temp(self, temp):
        self.calls.append(('temp', temp))

    def set_progress(self, share):
        self.calls.append(('progress', share))


def _runner(hooks=(), it=0, max_iters=10, should_update=True):
    return SimpleNamespace(
        model=FakeModel(), iter=it, max_iters=max_iters, hooks=list(hooks),
        optim_wrapper=SimpleNamespace(should_update=lambda: should_update),
        message_hub=MessageHub.get_instance('test_teacher_schedule_hook'))


def test_progress_by_iterations_without_a_budget():
    hook = TeacherScheduleHook()
    runner = _runner(it=2, max_iters=10)
    hook.before_train_iter(runner, 2)
    hook.after_train_iter(runner, 2)
    # before iteration 2: share 2/10; after its optimiser step: share 3/10
    assert runner.model.calls == [('temp', pytest.approx(0.04 + 0.03 * (0.2 / 0.3))),
                                  ('progress', pytest.approx(0.2)),
                                  ('ema', pytest.approx(cosine_momentum(0.3)))]


def test_progress_by_the_time_budget_share():
    budget = TimeBudgetHook(budget_s=100.0)
    budget._elapsed, budget._tic = 45.0, None  # 45 s of 100 s spent
    hook = TeacherScheduleHook()
    runner = _runner(hooks=[budget], it=3, max_iters=10_000_000)
    hook.before_train_iter(runner, 3)
    hook.after_train_iter(runner, 3)
    assert runner.model.calls == [('temp', pytest.approx(0.07)), ('progress', 0.45),
                                  ('ema', pytest.approx(cosine_momentum(0.45)))]
    assert runner.message_hub.get_scalar('train/teacher_momentum').current() == \
        pytest.approx(cosine_momentum(0.45))


def test_no_teacher_update_without_an_optimiser_step():
    runner = _runner(should_update=False)
    TeacherScheduleHook().after_train_iter(runner, 0)
    assert runner.model.calls == []


def test_refuses_a_model_without_a_teacher():
    runner = _runner()
    runner.model = object()
    with pytest.raises(TypeError, match='update_teacher'):
        TeacherScheduleHook().before_train_iter(runner, 0)


@pytest.mark.parametrize('kwargs,msg', [
    (dict(momentum=(0.996, 1.2)), 'momentum'),
    (dict(momentum=0.996), 'momentum'),
    (dict(teacher_temp=(0.0, 0.07)), 'teacher_temp'),
    (dict(temp_warmup_share=1.5), 'temp_warmup_share'),
])
def test_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        TeacherScheduleHook(**kwargs)
