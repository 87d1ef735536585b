"""iBOT: masked student / unmasked teacher, shared head, patch-loss start, FasterViT's BN EMA."""
import math

import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


def _ibot(backbone, in_channels, patch_loss_start=0.0):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='IBOT', backbone=backbone,
        head=dict(type='DINOHead', in_channels=in_channels, hidden_channels=64,
                  bottleneck_channels=16, out_channels=32),
        loss_cls=dict(type='DINOLoss', out_channels=32),
        loss_patch=dict(type='IBOTPatchLoss', out_channels=32),
        patch_loss_start=patch_loss_start))
    model.init_weights()
    return model.train()


def _batch(b, size, grid):
    views = [torch.randn(b, 2, size, size) for _ in range(2)] + \
        [torch.randn(b, 2, size // 2, size // 2) for _ in range(2)]
    masks = torch.zeros(b, 2, grid, grid, dtype=torch.bool)
    masks[0, 0, 0, :] = True
    masks[1, 1, :, 1] = True
    samples = [DataSample().set_mask(m) for m in masks]
    return views, samples, masks


def _record(backbone, calls, tag):
    orig = backbone.forward_ssl

    def wrapped(x, mask=None):
        calls.append((tag, tuple(x.shape), None if mask is None else mask.clone()))
        return orig(x, mask)

    backbone.forward_ssl = wrapped


def test_student_sees_masked_globals_teacher_unmasked(pretrain_scope):
    model = _ibot(dict(type='AOIViT', arch='tiny', img_size=64), 384)
    calls = []
    _record(model.backbone, calls, 'student')
    _record(model.teacher.backbone, calls, 'teacher')
    views, samples, masks = _batch(2, 64, 4)
    losses = model.loss(views, samples)
    assert set(losses) == {'loss_cls', 'loss_patch'}
    assert all(torch.isfinite(v) for v in losses.values())
    by_tag = {(tag, shape): mask for tag, shape, mask in calls}
    assert by_tag[('teacher', (4, 2, 64, 64))] is None
    assert by_tag[('student', (4, 2, 32, 32))] is None  # local crops: never masked
    # global views concatenated view-major: [view 0 of every image, view 1 of every image]
    expected = torch.cat([masks[:, 0], masks[:, 1]])
    assert torch.equal(by_tag[('student', (4, 2, 64, 64))], expected)
    with pytest.raises(ValueError, match='mask'):
        model.loss(views, [DataSample(), DataSample()])


def test_patch_loss_starts_after_its_share(pretrain_scope):
    model = _ibot(dict(type='AOIViT', arch='tiny', img_size=64), 384, patch_loss_start=0.25)
    assert not model.patch_loss_enabled
    calls = []
    _record(model.backbone, calls, 'student')
    views, samples, _ = _batch(2, 64, 4)
    model.set_progress(0.1)
    assert set(model.loss(views, samples)) == {'loss_cls'}
    assert all(mask is None for _, _, mask in calls)  # unmasked during the warm-up
    model.set_progress(0.25)
    assert set(model.loss(views, samples)) == {'loss_cls', 'loss_patch'}
    model.set_teacher_temp(0.05)
    assert model.loss_cls.teacher_temp == model.loss_patch.teacher_temp == 0.05
    with pytest.raises(ValueError, match='patch_loss_start'):
        _ibot(dict(type='AOIViT', arch='tiny', img_size=64), 384, patch_loss_start=1.5)


def test_fastervit_step_and_batchnorm_buffers_averaged(pretrain_scope):
    model = _ibot(dict(type='FasterViT', arch='0', in_channels=2, drop_path_rate=0.2), 512)
    views, samples, _ = _batch(2, 64, 2)
    bn_names = [n for n, _ in model.backbone.named_buffers() if n.endswith('running_mean')]
    assert bn_names
    before = {n: b.clone() for n, b in model.teacher.backbone.named_buffers()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = model.loss(views, samples)
    sum(losses.values()).backward()
    optimizer.step()
    model.update_teacher(0.9)
    student = dict(model.backbone.named_buffers())
    for name in bn_names:
        expected = 0.9 * before[name] + 0.1 * student[name]
        torch.testing.assert_close(dict(model.teacher.backbone.named_buffers())[name], expected)
    moved = [n for n in bn_names if not torch.equal(before[n], student[n])]
    assert moved  # the student's BatchNorm statistics moved in train mode
    assert not model.teacher.training
    assert math.isfinite(losses['loss_patch'].item())
