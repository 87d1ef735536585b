"""Tests of the FasterViT blocks (``aoissl_mm/models/backbones/fastervit_blocks.py``)."""
import pytest
import torch
import torch.nn.functional as F

import aoissl_mm  # noqa: F401  (applies compat, registers modules)
from aoissl_mm.models.backbones.fastervit_blocks import CarrierTokenInit, FasterViTLevel

torch.set_num_threads(2)


@torch.no_grad()
def test_window_padding_equals_manual_pad_and_crop():
    torch.manual_seed(0)
    level = FasterViTLevel(dim=16, depth=2, num_heads=2, window_size=7, conv=False,
                           downsample=False, mlp_ratio=2.0, drop_path=[0.0, 0.0]).eval()
    x = torch.randn(2, 16, 10, 10)
    out = level.forward_stage(x)
    ref = level.forward_stage(F.pad(x, (0, 4, 0, 4)))[:, :, :10, :10]
    assert tuple(out.shape) == (2, 16, 10, 10)
    torch.testing.assert_close(out, ref)
    # padding top/left instead would give a different result
    other = level.forward_stage(F.pad(x, (4, 0, 4, 0)))[:, :, 4:, 4:]
    assert not torch.allclose(out, other, atol=1e-4)


@torch.no_grad()
def test_window_attention_is_local_without_hat_and_global_with_hat():
    x = torch.randn(1, 16, 14, 14)
    x2 = x.clone()
    x2[:, :, 0:7, 0:7] += 1.0  # perturb the top-left window only
    for hat in (False, True):
        torch.manual_seed(0)
        level = FasterViTLevel(dim=16, depth=2, num_heads=2, window_size=7, conv=False,
                               downsample=False, mlp_ratio=2.0, drop_path=[0.0, 0.0],
                               hat=hat, ct_size=2).eval()
        delta = (level.forward_stage(x) - level.forward_stage(x2)).abs()
        assert delta[:, :, :7, :7].max() > 1e-3
        far = delta[:, :, 7:, 7:].max()  # the bottom-right window
        if hat:
            assert far > 1e-4  # information flows through the carrier tokens
        else:
            assert far == 0


def test_carrier_token_init_pools_inside_windows():
    init = CarrierTokenInit(dim=1, window_size=7, ct_size=2)
    with torch.no_grad():
        init.pos_conv.weight.zero_()
        init.pos_conv.weight[0, 0, 1, 1] = 1.0  # identity conv
        init.pos_conv.bias.zero_()
    x = torch.randn(1, 1, 14, 7)
    ct = init(x)
    assert tuple(ct.shape) == (1, 1, 4, 2)
    # rows [0,4) / [3,7) of window 0 and [7,11) / [10,14) of window 1; cols [0,4) / [3,7)
    assert ct[0, 0, 1, 0].item() == pytest.approx(x[0, 0, 3:7, 0:4].mean().item(), abs=1e-6)
    assert ct[0, 0, 2, 1].item() == pytest.approx(x[0, 0, 7:11, 3:7].mean().item(), abs=1e-6)
