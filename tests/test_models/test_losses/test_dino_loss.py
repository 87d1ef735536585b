"""DINOLoss against a hand computation: centring, sharpening, skipped same-view pairs."""
import numpy as np
import pytest
import torch

from aoissl_mm.models.losses import DINOLoss


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _reference(student, teacher, center, tau_s, tau_t, skip_same=True):
    """Loops over pairs and rows, numpy float64."""
    terms = []
    for ti, t in enumerate(teacher):
        p_t = _softmax((t - center) / tau_t)
        for si, s in enumerate(student):
            if skip_same and si == ti:
                continue
            log_p_s = np.log(_softmax(s / tau_s))
            rows = [-(p_t[b] * log_p_s[b]).sum() for b in range(t.shape[0])]
            terms.append(np.mean(rows))
    return float(np.mean(terms)), len(terms)


def test_loss_and_center_hand_computed():
    rng = np.random.default_rng(0)
    b, k = 3, 5
    student = [rng.normal(size=(b, k)) for _ in range(4)]  # 2 global + 2 local views
    teacher = [rng.normal(size=(b, k)) for _ in range(2)]
    center0 = rng.normal(size=(1, k)) * 0.3
    loss_fn = DINOLoss(out_channels=k, student_temp=0.1, teacher_temp=0.05, center_momentum=0.9)
    loss_fn.center.copy_(torch.from_numpy(center0))
    got = loss_fn([torch.from_numpy(s) for s in student], [torch.from_numpy(t) for t in teacher])
    expected, pairs = _reference(student, teacher, center0, 0.1, 0.05)
    assert pairs == 2 * 3  # each teacher view against the 3 OTHER student views
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # the reference's variant with same-view pairs is a different number: the test can fail
    with_same, _ = _reference(student, teacher, center0, 0.1, 0.05, skip_same=False)
    assert abs(with_same - expected) > 1e-3
    # the centre was used before it was updated; then c <- 0.9 c + 0.1 mean(teacher rows)
    mean = np.concatenate(teacher).mean(axis=0, keepdims=True)
    np.testing.assert_allclose(loss_fn.center.numpy(), 0.9 * center0 + 0.1 * mean, rtol=1e-5)


def test_teacher_temperature_is_read_at_call_time_and_eval_keeps_center():
    rng = np.random.default_rng(1)
    student = [torch.from_numpy(rng.normal(size=(2, 4))) for _ in range(3)]
    teacher = [torch.from_numpy(rng.normal(size=(2, 4))) for _ in range(2)]
    loss_fn = DINOLoss(out_channels=4).eval()
    loss_fn.teacher_temp = 0.07  # what TeacherScheduleHook sets
    got = loss_fn(student, teacher)
    expected, _ = _reference([s.numpy() for s in student], [t.numpy() for t in teacher],
                             np.zeros((1, 4)), 0.1, 0.07)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert torch.equal(loss_fn.center, torch.zeros(1, 4))  # eval: no centre update


def test_gradient_reaches_the_student_only():
    s = [torch.randn(2, 4, requires_grad=True) for _ in range(3)]
    t = [torch.randn(2, 4, requires_grad=True) for _ in range(2)]
    DINOLoss(out_channels=4)(s, t).backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in s)
    assert all(x.grad is None for x in t)


@pytest.mark.parametrize('kwargs,msg', [
    (dict(student_temp=0.0), 'student_temp'),
    (dict(teacher_temp=-1.0), 'teacher_temp'),
    (dict(center_momentum=1.0), 'center_momentum'),
])
def test_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        DINOLoss(**kwargs)


def test_view_count_checked():
    with pytest.raises(ValueError, match='teacher views'):
        DINOLoss(out_channels=4)([torch.randn(2, 4)], [torch.randn(2, 4)] * 2)
