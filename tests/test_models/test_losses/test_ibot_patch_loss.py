"""IBOTPatchLoss: masked tokens only (hand-computed), unmasked tokens ignored, own centre."""
import numpy as np
import pytest
import torch

from aoissl_mm.models.losses import IBOTPatchLoss


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _setup(seed=0, b=2, length=4, k=3):
    rng = np.random.default_rng(seed)
    student = [rng.normal(size=(b, length, k)) for _ in range(2)]
    teacher = [rng.normal(size=(b, length, k)) for _ in range(2)]
    masks = [np.zeros((b, length), bool) for _ in range(2)]
    masks[0][0, [1, 3]] = True   # view 0: image 0 has tokens 1 and 3 masked, image 1 none
    masks[1][0, 0] = True        # view 1: image 0 token 0, image 1 every token
    masks[1][1, :] = True
    return student, teacher, masks


def _as_torch(arrays, grad=False):
    return [torch.tensor(a, requires_grad=grad) for a in arrays]


def test_hand_computed_value_and_center():
    student, teacher, masks = _setup()
    center0 = np.array([[0.2, -0.1, 0.05]])
    tau_s, tau_t = 0.1, 0.04
    loss_fn = IBOTPatchLoss(out_channels=3, student_temp=tau_s, teacher_temp=tau_t)
    loss_fn.center.copy_(torch.from_numpy(center0))
    got = loss_fn(_as_torch(student), _as_torch(teacher), _as_torch(masks))

    def token(v, b, i):
        p_t = _softmax((teacher[v][b, i] - center0[0]) / tau_t)
        log_p_s = np.log(_softmax(student[v][b, i] / tau_s))
        return -(p_t * log_p_s).sum()

    # (image, view) pairs with masked tokens: (0, v0) tokens 1, 3; (0, v1) token 0;
    # (1, v1) tokens 0-3. (1, v0) has none and is skipped.
    pairs = [np.mean([token(0, 0, 1), token(0, 0, 3)]), token(1, 0, 0),
             np.mean([token(1, 1, i) for i in range(4)])]
    assert got.item() == pytest.approx(np.mean(pairs), rel=1e-6)
    # the patch centre: all teacher tokens of both views (masked or not)
    mean = np.concatenate([t.reshape(-1, 3) for t in teacher]).mean(axis=0, keepdims=True)
    np.testing.assert_allclose(loss_fn.center.numpy(), 0.9 * center0 + 0.1 * mean, rtol=1e-6)


def test_unmasked_student_tokens_do_not_matter():
    student, teacher, masks = _setup(seed=1)
    loss_fn = IBOTPatchLoss(out_channels=3).eval()
    base = loss_fn(_as_torch(student), _as_torch(teacher), _as_torch(masks)).item()
    changed = [s.copy() for s in student]
    rng = np.random.default_rng(7)
    for s, m in zip(changed, masks):
        s[~m] = rng.normal(size=s[~m].shape) * 10
    assert loss_fn(_as_torch(changed), _as_torch(teacher), _as_torch(masks)).item() == base
    # a masked token does matter (so the test above can fail)
    changed[0][0, 1, 0] += 5.0  # one logit (a shift of all K would not change softmax)
    assert loss_fn(_as_torch(changed), _as_torch(teacher), _as_torch(masks)).item() != base
    # and gradients reach masked positions only
    s = _as_torch(student, grad=True)
    loss_fn(s, _as_torch(teacher), _as_torch(masks)).backward()
    for x, m in zip(s, masks):
        assert (x.grad[torch.from_numpy(~m)] == 0).all()
        assert (x.grad[torch.from_numpy(m)].abs().sum(-1) > 0).all()


def test_no_masked_token_gives_zero_with_a_graph():
    student, teacher, masks = _setup()
    masks = [np.zeros_like(m) for m in masks]
    s = _as_torch(student, grad=True)
    loss = IBOTPatchLoss(out_channels=3)(s, _as_torch(teacher), _as_torch(masks))
    assert loss.item() == 0.0
    loss.backward()
    assert all((x.grad == 0).all() for x in s)


def test_grid_masks_and_shape_checks():
    student, teacher, masks = _setup()
    grid = [torch.from_numpy(m.reshape(2, 2, 2)) for m in masks]  # (B, h, w), row-major
    loss_fn = IBOTPatchLoss(out_channels=3).eval()
    flat = loss_fn(_as_torch(student), _as_torch(teacher), _as_torch(masks))
    assert loss_fn(_as_torch(student), _as_torch(teacher), grid).item() == flat.item()
    with pytest.raises(ValueError, match='does not fit'):
        loss_fn(_as_torch(student), _as_torch(teacher), [torch.ones(2, 3, dtype=bool)] * 2)
    with pytest.raises(ValueError, match='same number'):
        loss_fn(_as_torch(student), _as_torch(teacher), _as_torch(masks[:1]))
