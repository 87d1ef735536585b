"""DINOHead: layer sizes, hand-computed forward, trainable gain initialised to 1, deepcopy."""
import copy

import pytest
import torch

from aoissl_mm.models.heads import DINOHead


def test_shapes_and_parameter_count():
    head = DINOHead()
    assert head(torch.randn(3, 384)).shape == (3, 768)
    assert head(torch.randn(2, 5, 384)).shape == (2, 5, 768)  # patch tokens (iBOT)
    mlp = (384 * 2048 + 2048) + (2048 * 2048 + 2048) + (2048 * 256 + 256)
    last = 768 * 256 + 768  # direction V and one gain per prototype, no bias
    assert sum(p.numel() for p in head.parameters()) == mlp + last
    assert DINOHead(in_channels=512)(torch.randn(2, 512)).shape == (2, 768)
    with pytest.raises(ValueError, match='384 input channels'):
        head(torch.randn(2, 512))
    with pytest.raises(ValueError, match='out_channels'):
        DINOHead(out_channels=0)


def test_forward_hand_computed():
    torch.manual_seed(0)
    head = DINOHead(in_channels=6, hidden_channels=8, bottleneck_channels=4, out_channels=5)
    gain = head.last_layer.parametrizations.weight.original0
    assert gain.requires_grad and torch.equal(gain, torch.ones(5, 1))
    with torch.no_grad():
        gain.copy_(torch.rand(5, 1) + 0.5)  # a trained, non-unit gain
    x = torch.randn(3, 6)
    lin = [m for m in head.mlp if isinstance(m, torch.nn.Linear)]
    h = x
    for i, m in enumerate(lin):
        h = h @ m.weight.T + m.bias
        if i < 2:
            h = 0.5 * h * (1 + torch.erf(h / 2**0.5))  # exact GELU
    z = h / h.norm(dim=1, keepdim=True)
    v = head.last_layer.parametrizations.weight.original1
    w = gain * v / v.norm(dim=1, keepdim=True)
    expected = z @ w.T
    torch.testing.assert_close(head(x), expected, rtol=1e-5, atol=1e-6)
    # every output row is bounded by the gain (unit vectors times unit rows)
    assert (head(x).abs() <= gain.T + 1e-5).all()
    # the gain is trained: it receives a gradient
    head(x).sum().backward()
    assert gain.grad is not None and gain.grad.abs().sum() > 0


def test_deepcopy_is_independent():
    torch.manual_seed(0)
    head = DINOHead(in_channels=6, hidden_channels=8, bottleneck_channels=4, out_channels=5)
    twin = copy.deepcopy(head)  # the old torch.nn.utils.weight_norm fails here on torch 2.14
    x = torch.randn(2, 6)
    torch.testing.assert_close(twin(x), head(x))
    with torch.no_grad():
        twin.last_layer.parametrizations.weight.original1.add_(1.0)
        twin.last_layer.parametrizations.weight.original0.mul_(2.0)
    assert not torch.allclose(twin(x), head(x))
    assert torch.equal(head.last_layer.parametrizations.weight.original0, torch.ones(5, 1))
