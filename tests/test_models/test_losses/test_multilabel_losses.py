"""Tests of the multi-label losses (and of reusing mmseg's sigmoid BCE)."""
import math

import pytest
import torch
from mmseg.registry import MODELS

import aoissl_mm  # noqa: F401  (registers the plugin)

L3 = math.log(3.0)  # sigmoid(L3) = 0.75, sigmoid(-L3) = 0.25


def _hand_example():
    """(1, 2, 2, 2) logits / targets used for hand-computed references.

    Class 0: p = [0.5, 0.75, 0.25, 0.5], t = [1, 1, 0, 255] (last ignored).
      inter = 0.5 + 0.75 = 1.25; card = (0.5 + 0.75 + 0.25) + (1 + 1 + 0) = 3.5
      dice = 2 * 1.25 / 3.5 = 0.714286 -> loss0 = 0.285714
      jaccard = 1.25 / (3.5 - 1.25) = 0.555556 -> loss0 = 0.444444
    Class 1: t = [0, 0, 0, 255] -> no positive target, masked out.
    """
    logits = torch.tensor([[[[0.0, L3], [-L3, 0.0]], [[1.0, -2.0], [0.5, 3.0]]]])
    target = torch.tensor([[[[1, 1], [0, 255]], [[0, 0], [0, 255]]]], dtype=torch.uint8)
    return logits, target


def test_bce_reuse_hand_computed():
    # logits [0, 2, -1, 0.5], targets [1, 0, 255, 1]:
    # BCE(0,1)=ln2=0.693147, BCE(2,0)=ln(1+e^2)=2.126928, BCE(0.5,1)=ln(1+e^-0.5)=0.474077
    # mean over the 3 valid elements = 3.294152 / 3 = 1.098051
    loss = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True,
                             loss_name='loss_bce'))
    logits = torch.tensor([[[[0.0, 2.0]], [[-1.0, 0.5]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[[1, 0]], [[255, 1]]]], dtype=torch.uint8)
    value = loss(logits, target, weight=None, ignore_index=255)
    assert value.item() == pytest.approx(1.098051, abs=1e-5)


def test_weighted_bce_hand_computed():
    """MultiLabelBCELoss weighs the positives of each class by its class_weight.

    logits (1, 2, 1, 2): class 0 [0, 2], targets [1, 0]; class 1 [-1, 0.5], targets [255, 1].
    Class 0 weight 1: BCE(0,1) = ln2 = 0.693147, BCE(2,0) = ln(1+e^2) = 2.126928.
    Class 1 weight 4: 4 * BCE(0.5,1) = 4 * ln(1+e^-0.5) = 4 * 0.474077 = 1.896308.
    Mean over the 3 valid elements: 4.716383 / 3 = 1.572128.
    """
    loss = MODELS.build(dict(type='MultiLabelBCELoss', class_weight=[1.0, 4.0]))
    logits = torch.tensor([[[[0.0, 2.0]], [[-1.0, 0.5]]]])
    target = torch.tensor([[[[1, 0]], [[255, 1]]]], dtype=torch.uint8)
    assert loss(logits, target, ignore_index=255).item() == pytest.approx(1.572128, abs=1e-5)
    # without weights it is mmseg's sigmoid BCE (test_bce_reuse_hand_computed: 1.098051)
    plain = MODELS.build(dict(type='MultiLabelBCELoss'))
    assert plain(logits, target, ignore_index=255).item() == pytest.approx(1.098051, abs=1e-5)
    # the weight follows the class axis, whatever the width: a (1, 2, 3, 5) brute force
    torch.manual_seed(0)
    x = torch.randn(1, 2, 3, 5)
    t = (torch.rand(1, 2, 3, 5) > 0.5).to(torch.uint8)
    p = torch.sigmoid(x)
    w = torch.tensor([1.0, 4.0]).view(1, 2, 1, 1)
    brute = -(w * t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
    assert loss(x, t, ignore_index=255).item() == pytest.approx(brute.item(), rel=1e-5)
    with pytest.raises(ValueError, match="'class_weight' has 2 values for 3 classes"):
        loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match='positive weights'):
        MODELS.build(dict(type='MultiLabelBCELoss', class_weight=[1.0, 0.0]))
    # a single-class head passes (N, H, W) targets: class 1 alone, weight 4 -> 1.896308 / 1
    single = MODELS.build(dict(type='MultiLabelBCELoss', class_weight=[4.0]))
    assert single(logits[:, 1:], target[:, 1], ignore_index=255).item() == pytest.approx(
        1.896308, abs=1e-5)


def test_dice_hand_computed():
    logits, target = _hand_example()
    smp_like = MODELS.build(dict(type='MultiLabelDiceLoss'))
    assert smp_like.loss_name == 'loss_dice'
    # absent class contributes 0, mean divides by C = 2: 0.285714 / 2
    assert smp_like(logits, target).item() == pytest.approx(0.142857, abs=1e-5)
    present_only = MODELS.build(dict(type='MultiLabelDiceLoss', mean_over_present=True))
    assert present_only(logits, target).item() == pytest.approx(0.285714, abs=1e-5)
    # smooth = 1: dice0 = (2.5 + 1) / (3.5 + 1) = 0.777778 -> loss0 = 0.222222; / 2
    smooth = MODELS.build(dict(type='MultiLabelDiceLoss', smooth=1.0, loss_weight=2.0))
    assert smooth(logits, target).item() == pytest.approx(2.0 * 0.111111, abs=1e-5)


def test_jaccard_hand_computed():
    logits, target = _hand_example()
    loss = MODELS.build(dict(type='MultiLabelJaccardLoss'))
    assert loss.loss_name == 'loss_jaccard'
    assert loss(logits, target).item() == pytest.approx(0.444444 / 2, abs=1e-5)
    present_only = MODELS.build(dict(type='MultiLabelJaccardLoss', mean_over_present=True))
    assert present_only(logits, target).item() == pytest.approx(0.444444, abs=1e-5)


def _brute_force(logits, target, kind, smooth, eps, ignore, mean_over_present):
    n, c, h, w = logits.shape
    losses, present = [], []
    for k in range(c):
        inter = card = pos = 0.0
        for b in range(n):
            for y in range(h):
                for x in range(w):
                    t = int(target[b, k, y, x])
                    if t == ignore:
                        continue
                    p = 1.0 / (1.0 + math.exp(-float(logits[b, k, y, x])))
                    inter += p * t
                    card += p + t
                    pos += t
        if kind == 'dice':
            score = (2 * inter + smooth) / max(card + smooth, eps)
        else:
            score = (inter + smooth) / max(card - inter + smooth, eps)
        losses.append(1.0 - score)
        present.append(pos > 0)
    masked = [l_ if p else 0.0 for l_, p in zip(losses, present)]
    if mean_over_present:
        return sum(masked) / max(sum(present), 1)
    return sum(masked) / c


@pytest.mark.parametrize('kind', ['dice', 'jaccard'])
@pytest.mark.parametrize('mean_over_present', [False, True])
def test_random_against_brute_force(kind, mean_over_present):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=gen) * 2
    target = (torch.rand(2, 3, 4, 5, generator=gen) > 0.6).to(torch.uint8)
    target[torch.rand(2, 3, 4, 5, generator=gen) > 0.8] = 255
    target[:, 2][target[:, 2] == 1] = 0  # class 2 absent
    typ = 'MultiLabelDiceLoss' if kind == 'dice' else 'MultiLabelJaccardLoss'
    loss = MODELS.build(dict(type=typ, smooth=0.5, mean_over_present=mean_over_present))
    expected = _brute_force(logits, target, kind, 0.5, 1e-7, 255, mean_over_present)
    assert loss(logits, target).item() == pytest.approx(expected, abs=1e-5)


def test_ignored_elements_get_no_gradient_and_do_not_matter():
    logits, target = _hand_example()
    logits = logits.clone().requires_grad_(True)
    loss = MODELS.build(dict(type='MultiLabelDiceLoss'))
    loss(logits, target).backward()
    assert logits.grad[0, 0, 1, 1].item() == 0.0
    assert logits.grad[0, 0, 0, 0].item() != 0.0
    changed = logits.detach().clone()
    changed[0, 0, 1, 1] = 50.0  # an ignored element
    assert loss(changed, target).item() == pytest.approx(loss(logits.detach(), target).item())


def test_forward_ignore_index_override_and_weight():
    logits, target = _hand_example()
    target = target.clone()
    target[target == 255] = 7
    loss = MODELS.build(dict(type='MultiLabelDiceLoss'))
    with pytest.raises(ValueError, match='target'):
        loss(logits, target)  # 7 is neither 0/1 nor the ignore index 255
    assert loss(logits, target, ignore_index=7).item() == pytest.approx(0.142857, abs=1e-5)
    # a pixel weight of 0 on pixel (1, 1) is the same as ignoring it
    target[target == 7] = 1
    weight = torch.ones(1, 2, 2)
    weight[0, 1, 1] = 0.0
    assert loss(logits, target, weight=weight).item() == pytest.approx(0.142857, abs=1e-5)


def test_single_class_target_without_channel_dim():
    logits, target = _hand_example()
    loss = MODELS.build(dict(type='MultiLabelJaccardLoss'))
    a = loss(logits[:, :1], target[:, :1])
    b = loss(logits[:, :1], target[:, 0])
    assert a.item() == pytest.approx(0.444444, abs=1e-5)
    assert b.item() == pytest.approx(a.item())


def test_bad_inputs_raise_clear_errors():
    loss = MODELS.build(dict(type='MultiLabelDiceLoss'))
    with pytest.raises(ValueError, match="'target'.*shape"):
        loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="'target' values"):
        loss(torch.zeros(1, 2, 3, 3), torch.full((1, 2, 3, 3), 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="'weight'"):
        loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3), weight=torch.ones(5))
    with pytest.raises(ValueError, match="'eps'"):
        MODELS.build(dict(type='MultiLabelDiceLoss', eps=0.0))


def test_half_precision_logits_give_float32_loss():
    logits, target = _hand_example()
    value = MODELS.build(dict(type='MultiLabelDiceLoss'))(logits.half(), target)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(0.142857, abs=1e-3)
