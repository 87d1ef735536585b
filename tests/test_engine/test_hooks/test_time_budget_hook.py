"""TimeBudgetHook: LR by elapsed share of the budget, stop, final checkpoint, resume."""
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from aoissl_mm.engine.hooks import TimeBudgetHook
from aoissl_mm.engine.hooks import time_budget_hook as tbh
from aoissl_mm.utils.checkpoint import safe_torch_load


class FakeClock:

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_lr_formula_hand_computed():
    hook = TimeBudgetHook(budget_s=100, warmup_share=0.1, min_lr=0.0, warmup_start_factor=0.2)
    # warm-up: linear in the share, from 0.2 (start factor) to 1: 0.2 + 0.8 * 0.5
    assert hook.lr_factor(0.0, 1.0) == pytest.approx(0.2)
    assert hook.lr_factor(0.05, 1.0) == pytest.approx(0.6)
    # end of warm-up = base
    assert hook.lr_factor(0.1, 1.0) == pytest.approx(1.0)
    # halfway through the cosine part: (1 + cos(pi/2)) / 2 = 0.5
    assert hook.lr_factor(0.55, 1.0) == pytest.approx(0.5)
    # a quarter through: (1 + cos(pi/4)) / 2
    assert hook.lr_factor(0.325, 2.0) == pytest.approx(2.0 * (1 + math.cos(math.pi / 4)) / 2)
    hook2 = TimeBudgetHook(budget_h=1.0, warmup_share=0.0, min_lr=5e-7)
    assert hook2.budget_s == 3600
    assert hook2.lr_factor(1.0, 1e-3) == pytest.approx(5e-7)
    assert hook2.lr_factor(5.0, 1e-3) == pytest.approx(5e-7)  # clamped past the end


@pytest.mark.parametrize('kwargs,msg', [
    (dict(), 'exactly one'),
    (dict(budget_s=1, budget_h=1), 'exactly one'),
    (dict(budget_s=0), '> 0'),
    (dict(budget_s=10, warmup_share=1.0), 'warmup_share'),
    (dict(budget_s=10, warmup_start_factor=0.0), 'warmup_start_factor'),
    (dict(budget_s=10, warmup_start_factor=1.5), 'warmup_start_factor'),
])
def test_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        TimeBudgetHook(**kwargs)


def _runner(work_dir, hook, max_iters=1000, resume=False):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.backbone = nn.Linear(3, 4)
            self.head = nn.Linear(4, 1)

        def forward(self, inputs, labels=None, mode='tensor'):
            x = torch.stack(inputs) if isinstance(inputs, list) else inputs
            y = torch.stack(labels) if isinstance(labels, list) else labels
            out = self.head(self.backbone(x))
            return {'loss': F.mse_loss(out, y)} if mode == 'loss' else out

    data = [dict(inputs=torch.randn(3), labels=torch.randn(1)) for _ in range(4)]
    return Runner(
        model=Toy(), work_dir=work_dir,
        train_dataloader=dict(dataset=data, sampler=dict(type='InfiniteSampler', shuffle=True),
                              batch_size=2, num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1),
                           paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.5)})),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        custom_hooks=[hook], default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        resume=resume, default_scope='mmseg', randomness=dict(seed=0),
        experiment_name=f'budget_{resume}')


def test_training_follows_the_clock_stops_and_resumes(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(tbh.time, 'perf_counter', clock)
    hook = TimeBudgetHook(budget_s=10.0, warmup_share=0.2, min_lr=0.0, warmup_start_factor=0.1)
    seen = []

    class Tick(tbh.Hook):
        priority = 'VERY_HIGH'  # the iteration's time passes before the budget check

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            seen.append([g['lr'] for g in runner.optim_wrapper.optimizer.param_groups])
            clock.t += 1.0  # every iteration "takes" one second

    runner = _runner(str(tmp_path), hook)
    runner.register_hook(Tick())
    runner.train()
    # 10 s budget at 1 s per iteration: stops after 10 iterations, long before max_iters
    assert runner.iter == 10
    # iteration k runs at share k/10; groups keep their own base LR (backbone weight+bias
    # at 0.05, head weight+bias at 0.1)
    for k, lrs in enumerate(seen):
        s = k / 10
        expect = (0.1 + 0.9 * s / 0.2) if s < 0.2 else \
            0.5 * (1 + math.cos(math.pi * (s - 0.2) / 0.8))
        assert sorted(lrs) == pytest.approx(sorted([0.05 * expect] * 2 + [0.1 * expect] * 2))
    # a final checkpoint is written although no interval was reached
    ckpt = osp.join(str(tmp_path), 'iter_10.pth')
    assert osp.isfile(ckpt)
    assert open(osp.join(str(tmp_path), 'last_checkpoint')).read().strip() == ckpt
    state = safe_torch_load(ckpt)
    assert state['message_hub']['runtime_info'][tbh._INFO_KEY] == pytest.approx(10.0)

    # resume with a bigger budget: the 10 s already spent count
    hook2 = TimeBudgetHook(budget_s=14.0, warmup_share=0.2, min_lr=0.0)
    runner2 = _runner(str(tmp_path), hook2, resume=True)
    runner2.register_hook(Tick())
    runner2.train()
    assert runner2.iter == 14


def test_log_shows_budget_eta_and_the_lr_each_iteration_used(tmp_path, monkeypatch):
    """ETA = the training time left in the budget (not max_iters x mean time), `lr` = the
    head (largest) group's LR of the iteration itself, and warm-up starts above 0."""
    from aoissl_mm.engine.hooks import BudgetIterTimerHook, HeadLRRuntimeInfoHook

    clock = FakeClock()
    monkeypatch.setattr(tbh.time, 'perf_counter', clock)
    monkeypatch.setattr(tbh.time, 'time', clock)  # mmengine's iteration timer: 1 s per iteration
    hook = TimeBudgetHook(budget_s=10.0, warmup_share=0.2, min_lr=0.0, warmup_start_factor=0.01)
    used, logged, etas = [], [], []

    class Tick(tbh.Hook):
        priority = 'VERY_HIGH'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            used.append(max(g['lr'] for g in runner.optim_wrapper.optimizer.param_groups))
            clock.t += 1.0

    class Read(tbh.Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            logged.append(runner.message_hub.get_scalar('train/lr').current())
            etas.append(runner.message_hub.get_info('eta'))

    runner = _runner(str(tmp_path), hook)
    # the runtime's defaults (configs/_base_/default_runtime.py) replace mmengine's two hooks
    for i, h in enumerate(runner.hooks):
        if type(h).__name__ == 'RuntimeInfoHook':
            runner._hooks[i] = HeadLRRuntimeInfoHook()
        if type(h).__name__ == 'IterTimerHook':
            runner._hooks[i] = BudgetIterTimerHook()
    runner.register_hook(Tick())
    runner.register_hook(Read())
    runner.train()
    assert runner.iter == 10
    # hand-computed LRs of the head group (base 0.1): warm-up 0.01 + 0.99 * s / 0.2, then cosine
    expect = [0.1 * (0.01 + 0.99 * s / 0.2) if s < 0.2 else
              0.1 * 0.5 * (1 + math.cos(math.pi * (s - 0.2) / 0.8)) for s in
              [k / 10 for k in range(10)]]
    assert expect[0] == pytest.approx(0.001)  # the first iteration does not run at LR 0
    assert used == pytest.approx(expect)
    assert logged == pytest.approx(expect)  # not group 0 (backbone, lr_mult 0.5), not 1 it old
    # after iteration k (1 s each) the budget has 10 - (k + 1) s left; mmengine would report
    # ~ (1000 - k - 1) iterations x 1 s
    assert etas == pytest.approx([10.0 - (k + 1) for k in range(10)], abs=1e-6)
    # with max_iters closer than the budget's end, the iterations left decide
    hook2 = TimeBudgetHook(budget_s=100.0, warmup_share=0.2)
    etas.clear()
    runner2 = _runner(str(tmp_path / 'short'), hook2, max_iters=4)
    for i, h in enumerate(runner2.hooks):
        if type(h).__name__ == 'IterTimerHook':
            runner2._hooks[i] = BudgetIterTimerHook()
    runner2.register_hook(Tick())
    runner2.register_hook(Read())
    runner2.train()
    assert etas == pytest.approx([3.0, 2.0, 1.0, 0.0], abs=1e-6)
