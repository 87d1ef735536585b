"""The FasterViT-0 iBOT patch-loss warm-up through the real Runner: the CPU recipe's
TimeBudgetHook and TeacherScheduleHook, with the budget's clock faked so that iteration i starts
at the share i / 8 of the budget. The config's ``patch_loss_start`` is 0.25 (the paper's 25 of
100 epochs), so iterations 0 and 1 (shares 0, 0.125) train the CLS loss alone, on unmasked
crops, and iterations 2 and 3 (0.25, 0.375) add the masked-patch loss.

(tests/test_models/test_selfsup/test_ibot.py checks ``set_progress`` on the model alone;
tests/test_tools/test_train_dino_ibot.py trains the recipes with ``patch_loss_start=0``.)"""
import math
import os.path as osp
from types import SimpleNamespace
from typing import Dict, List

import cv2
import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from aoissl_mm.engine.hooks import TeacherScheduleHook, TimeBudgetHook
from aoissl_mm.engine.hooks import time_budget_hook as tbh
from aoissl_mm.utils import load_config, setup_train_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIG = osp.join(ROOT, 'configs', 'selfsup', 'ibot_fastervit0_budget20min_aoi-128.py')
STEPS = 8  # the budget in iterations of the fake clock
ITERS = 4  # shares 0, 1/8, 2/8, 3/8 before each iteration
K = 32


class _Recorder(Hook):
    """Moves the fake clock to ``iter / STEPS`` of the budget and records each iteration."""

    priority = 'VERY_HIGH'  # before TimeBudgetHook ('HIGH') reads the clock

    def __init__(self, clock: List[float], budget_s: float) -> None:
        self.clock = clock
        self.budget_s = budget_s
        self.rows: List[Dict] = []
        self.student_masks: List[bool] = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.clock[0] = runner.iter * self.budget_s / STEPS
        self.student_masks.clear()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        budget = next(h for h in runner.hooks if isinstance(h, TimeBudgetHook))
        self.rows.append(dict(
            share=budget.share, enabled=runner.model.patch_loss_enabled,
            outputs={k: float(torch.as_tensor(v).detach()) for k, v in outputs.items()},
            student_global_masked=list(self.student_masks)))


def _write_pretrain_folder(root: str) -> None:
    rng = np.random.default_rng(0)
    for k in range(4):
        for b in range(2):
            img = rng.integers(1, 255, size=(96, 96)).astype(np.uint8)
            assert cv2.imwrite(osp.join(root, 'pretrain', f'img{k}_buffer{b}.png'), img)


@pytest.fixture
def runner_and_recorder(tmp_path, monkeypatch):
    (tmp_path / 'pretrain').mkdir()
    _write_pretrain_folder(str(tmp_path))
    cfg = load_config(CONFIG)
    assert cfg.model.patch_loss_start == 0.25
    loader = cfg.train_dataloader
    loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    loader.dataset.update(data_root=str(tmp_path), synthetic=None)
    (crop, ) = [t for t in loader.dataset.pipeline if t.type == 'AOIMultiCrop']
    # the smallest crops of FasterViT-0's 32-px grid; every global crop masked, so that the
    # patch loss, once on, has masked tokens to count
    crop.update(global_size=64, local_size=32, num_local=1, augment=None, mask_prob=1.0)
    cfg.model.head.update(hidden_channels=64, bottleneck_channels=16, out_channels=K)
    cfg.model.loss_cls.out_channels = cfg.model.loss_patch.out_channels = K
    budget_cfg, teacher_cfg = [h for h in cfg.custom_hooks
                               if h.type in ('TimeBudgetHook', 'TeacherScheduleHook')]
    assert (budget_cfg.type, teacher_cfg.type) == ('TimeBudgetHook', 'TeacherScheduleHook')
    cfg.custom_hooks = [budget_cfg, teacher_cfg]  # not the retrieval probe, if any
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=ITERS)
    cfg.default_hooks.checkpoint = None  # no 100-MB checkpoint
    cfg.default_hooks.logger.interval = 1
    cfg = setup_train_cfg(cfg, CONFIG, str(tmp_path / 'work'), None, False, 'none')
    # the budget's clock: only the recorder moves it
    clock = [0.0]
    monkeypatch.setattr(tbh, 'time', SimpleNamespace(perf_counter=lambda: clock[0]))
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    recorder = _Recorder(clock, float(budget_cfg.budget_s))
    runner.register_hook(recorder)
    student = runner.model.backbone
    forward_ssl = student.forward_ssl

    def recording_forward_ssl(x, mask=None):
        if x.shape[-1] == 64:  # the global crops (the local ones are never masked)
            recorder.student_masks.append(mask is not None and bool(mask.any()))
        return forward_ssl(x, mask)

    student.forward_ssl = recording_forward_ssl
    return runner, recorder


def test_patch_loss_off_for_the_first_quarter_then_on(runner_and_recorder):
    runner, recorder = runner_and_recorder
    assert any(isinstance(h, TeacherScheduleHook) for h in runner.hooks)
    assert not runner.model.patch_loss_enabled  # patch_loss_start 0.25 > 0
    runner.train()
    rows = recorder.rows
    assert len(rows) == ITERS
    for i, row in enumerate(rows):
        assert row['share'] == pytest.approx(i / STEPS)  # the fake clock reached the hooks
        out = row['outputs']
        assert math.isfinite(out['loss']) and out['loss_cls'] > 0
        if i / STEPS < 0.25:  # warm-up: CLS loss only, student sees unmasked crops
            assert not row['enabled'] and 'loss_patch' not in out, (i, out)
            assert out['loss'] == pytest.approx(out['loss_cls'])
            assert row['student_global_masked'] == [False]
        else:  # patch loss on, over masked tokens of the masked student crops
            assert row['enabled'] and out['loss_patch'] > 0, (i, out)
            assert out['loss'] == pytest.approx(out['loss_cls'] + out['loss_patch'], rel=1e-5)
            assert row['student_global_masked'] == [True]
    assert [('loss_patch' in r['outputs']) for r in rows] == [False, False, True, True]
