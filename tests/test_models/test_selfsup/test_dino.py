"""DINO: teacher = EMA of the student backbone AND head after an optimiser step; frozen, eval."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS

from aoissl_mm.engine.hooks import TeacherScheduleHook
from aoissl_mm.models.data_preprocessors import AOISelfSupDataPreprocessor

HEAD = dict(type='DINOHead', in_channels=384, hidden_channels=64, bottleneck_channels=16,
            out_channels=32)


def _dino():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='DINO',
                              backbone=dict(type='AOIViT', arch='tiny', img_size=64),
                              head=HEAD, loss_cls=dict(type='DINOLoss', out_channels=32)))
    model.init_weights()
    return model


def _views(b=2, n_local=2):
    return [torch.randn(b, 2, 64, 64) for _ in range(2)] + \
        [torch.randn(b, 2, 32, 32) for _ in range(n_local)]


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_teacher_starts_as_a_frozen_eval_copy(pretrain_scope):
    model = _dino()
    assert isinstance(model.data_preprocessor, AOISelfSupDataPreprocessor)
    for name in ('backbone', 'head'):
        student, teacher = _state(getattr(model, name)), _state(model.teacher[name])
        assert student.keys() == teacher.keys()
        assert all(torch.equal(student[k], teacher[k]) for k in student)
    assert not any(p.requires_grad for p in model.teacher.parameters())
    model.train()
    assert model.backbone.training and model.head.training
    assert not model.teacher.training and not any(m.training for m in model.teacher.modules())
    # the encoder is stored under `backbone.` for the fine-tuning loader
    assert any(k.startswith('backbone.blocks.') for k in model.state_dict())


def test_teacher_is_the_ema_of_the_student_after_an_optimiser_step(pretrain_scope):
    model = _dino().train()
    wrapper = OptimWrapper(torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2))
    hook = TeacherScheduleHook(momentum=(0.9, 1.0))
    runner = SimpleNamespace(model=model, iter=0, max_iters=4, hooks=[], optim_wrapper=wrapper,
                             message_hub=MessageHub.get_instance('test_dino_ema'))
    before = {n: _state(model.teacher[n]) for n in ('backbone', 'head')}
    hook.before_train_iter(runner, 0)
    losses = model.loss(_views(), None)
    wrapper.update_params(losses['loss'])
    hook.after_train_iter(runner, 0)
    # share after the step = 1/4: m = 1 - (1 - 0.9) * (1 + cos(pi / 4)) / 2
    m = 1 - 0.1 * (1 + math.cos(math.pi / 4)) / 2
    for name in ('backbone', 'head'):
        student, teacher = _state(getattr(model, name)), _state(model.teacher[name])
        moved = 0
        for k, t in teacher.items():
            expected = m * before[name][k] + (1 - m) * student[k]
            torch.testing.assert_close(t, expected, rtol=0, atol=1e-6)
            moved += int(not torch.equal(t, before[name][k]))
        assert moved > 0, f'the teacher {name} did not change'
    assert all(p.grad is None for p in model.teacher.parameters())


def test_update_teacher_edges(pretrain_scope):
    model = _dino()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.5)
    student = _state(model.head)
    kept = _state(model.teacher.head)
    model.update_teacher(1.0)
    assert all(torch.equal(v, kept[k]) for k, v in _state(model.teacher.head).items())
    model.update_teacher(0.0)
    assert all(torch.equal(v, student[k]) for k, v in _state(model.teacher.head).items())
    with pytest.raises(ValueError, match='momentum'):
        model.update_teacher(1.5)


def test_loss_uses_the_cls_token_and_sets_temperature(pretrain_scope):
    model = _dino()
    for backbone in (model.backbone, model.teacher.backbone):
        orig = backbone.forward_ssl

        def only_cls(x, mask=None, orig=orig):
            out = orig(x, mask)
            return dict(out, x_norm_patchtokens=torch.full_like(out['x_norm_patchtokens'],
                                                                float('nan')))

        backbone.forward_ssl = only_cls
    loss = model.loss(_views(), None)['loss']
    assert torch.isfinite(loss)
    model.set_teacher_temp(0.065)
    assert model.loss_cls.teacher_temp == 0.065


def test_bad_inputs(pretrain_scope):
    model = _dino()
    with pytest.raises(ValueError, match='view batches'):
        model.loss(_views()[:2], None)
    with pytest.raises(ValueError, match='global view batches must share one shape'):
        model.loss([torch.randn(2, 2, 64, 64), torch.randn(2, 2, 48, 48),
                    torch.randn(2, 2, 32, 32)], None)
