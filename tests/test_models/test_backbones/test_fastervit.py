"""Tests of the FasterViT-0 backbone (``aoissl_mm/models/backbones/fastervit.py``).

Its blocks are tested in ``test_fastervit_blocks.py``, the shared layers in
``tests/test_models/test_utils`` and the optimiser wiring of its layer ids in
``test_layer_decay.py``.
"""
import pytest
import torch
import torch.nn.functional as F

import aoissl_mm  # noqa: F401  (applies compat, registers modules)
from aoissl_mm.models.backbones import FasterViT

torch.set_num_threads(2)


@pytest.fixture(scope='module')
def fvit() -> FasterViT:
    torch.manual_seed(0)
    return FasterViT().eval()


@pytest.fixture(scope='module')
def hat_model() -> FasterViT:
    torch.manual_seed(0)
    return FasterViT(hat=True, drop_path_rate=0.0).eval()


def test_registered_in_both_registries():
    from mmpretrain.registry import MODELS as P
    from mmseg.registry import MODELS as S
    assert S.get('FasterViT') is P.get('FasterViT') is not None


def test_fastervit_parameter_count(fvit):
    total = sum(p.numel() for p in fvit.parameters())
    # reference FasterViT-0 (HAT off, 2 channels, no classifier) + the 64-d mask token
    assert total - fvit.mask_token.numel() == 25_320_704
    assert total == 25_320_768
    # hand count of the stem: 2*64*9 + 64*64*9 conv weights, two BN(64)
    assert sum(p.numel() for p in fvit.stem.parameters()) == 2 * 64 * 9 + 64 * 64 * 9 + 4 * 64


@torch.no_grad()
def test_fastervit_shapes_224_and_padding_path(fvit):
    outs = fvit(torch.randn(1, 2, 224, 224))
    assert [tuple(o.shape) for o in outs] == [(1, 128, 28, 28), (1, 256, 14, 14),
                                               (1, 512, 7, 7), (1, 512, 7, 7)]
    # 96x160: /16 = 6x10 and /32 = 3x5 are not multiples of the 7x7 window
    outs = fvit(torch.randn(2, 2, 96, 160))
    assert [tuple(o.shape) for o in outs] == [(2, 128, 12, 20), (2, 256, 6, 10),
                                               (2, 512, 3, 5), (2, 512, 3, 5)]
    assert all(torch.isfinite(o).all() for o in outs)


@torch.no_grad()
def test_fastervit_large_inputs(fvit):
    outs = fvit(torch.randn(1, 2, 512, 512))
    assert [tuple(o.shape[-2:]) for o in outs] == [(64, 64), (32, 32), (16, 16), (16, 16)]
    outs = fvit(torch.randn(1, 2, 480, 640))
    assert [tuple(o.shape[-2:]) for o in outs] == [(60, 80), (30, 40), (15, 20), (15, 20)]


@torch.no_grad()
def test_fastervit_out_index_0_and_ssl_outputs(fvit):
    model = fvit
    x = torch.randn(1, 2, 64, 96)
    model.out_indices = (0, 4)
    try:
        s1, f4 = model(x)
    finally:
        model.out_indices = (1, 2, 3, 4)
    assert tuple(s1.shape) == (1, 64, 16, 24)
    ssl = model.forward_ssl(x)
    assert tuple(ssl['x_norm_patchtokens'].shape) == (1, 6, 512)
    # patch tokens = LayerNorm over channels of F4, flattened row-major
    ref = F.layer_norm(f4.permute(0, 2, 3, 1), (512,), model.norm.weight, model.norm.bias, 1e-5)
    torch.testing.assert_close(ssl['x_norm_patchtokens'], ref.reshape(1, 6, 512))
    torch.testing.assert_close(ssl['x_norm_clstoken'], ref.reshape(6, 512).mean(0, keepdim=True))


def test_fastervit_drop_path_schedule(fvit):
    blocks = [b for lvl in fvit.levels for b in lvl.blocks]
    assert len(blocks) == 16
    assert isinstance(blocks[0].drop_path, torch.nn.Identity)
    assert blocks[1].drop_path.drop_prob == pytest.approx(0.2 / 15)
    assert blocks[15].drop_path.drop_prob == pytest.approx(0.2)


@torch.no_grad()
def test_fastervit_hat_forward_and_fixed_size(hat_model):
    model = hat_model
    outs = model(torch.randn(1, 2, 96, 160))
    assert [tuple(o.shape) for o in outs] == [(1, 128, 12, 20), (1, 256, 6, 10),
                                               (1, 512, 3, 5), (1, 512, 3, 5)]
    assert model.levels[2].ct_init is not None and model.levels[3].ct_init is not None
    paper = FasterViT(hat=(False, False, True, False))
    assert paper.levels[3].ct_init is None
    fixed = FasterViT(hat=True, hat_input_size=64).eval()
    assert tuple(fixed(torch.randn(1, 2, 64, 64))[-1].shape) == (1, 512, 2, 2)
    with pytest.raises(ValueError, match='hat_input_size'):
        fixed(torch.randn(1, 2, 64, 96))
    with pytest.raises(ValueError, match='hat_input_size'):
        FasterViT(hat_input_size=64)
    with pytest.raises(ValueError, match='conv stages'):
        FasterViT(hat=(True, False, True, False))


@torch.no_grad()
def test_fastervit_mask_token(fvit):
    x = torch.randn(2, 2, 64, 96)
    plain = fvit(x)
    none_masked = fvit(x, mask=torch.zeros(2, 2, 3, dtype=torch.bool))
    for a, b in zip(plain, none_masked):
        torch.testing.assert_close(a, b)
    mask = torch.zeros(2, 2, 3, dtype=torch.bool)
    mask[0, 1, 2] = True
    masked = fvit(x, mask=mask)
    assert not torch.allclose(masked[-1][0], plain[-1][0])
    torch.testing.assert_close(masked[-1][1], plain[-1][1])  # sample 1 has no mask

    # the stem output is replaced by the token on the 8x8 /4 cells of masked units
    token = torch.randn(1, 64, 1, 1)
    fvit.mask_token.data.copy_(token)
    seen = {}
    hook = fvit.levels[0].register_forward_pre_hook(lambda m, a: seen.update(x=a[0].clone()))
    try:
        fvit(x, mask=mask)
    finally:
        hook.remove()
        fvit.mask_token.data.zero_()
    stem = fvit.stem(x)
    got = seen['x']
    torch.testing.assert_close(got[0, :, 8:16, 16:24], token[0].expand(64, 8, 8))
    torch.testing.assert_close(got[0, :, :8], stem[0, :, :8])
    torch.testing.assert_close(got[0, :, 8:16, :16], stem[0, :, 8:16, :16])
    torch.testing.assert_close(got[1], stem[1])


def test_fastervit_mask_shape_error(fvit):
    with pytest.raises(ValueError, match=r'mask must have shape .*\(2, 2, 3\)'):
        fvit(torch.randn(2, 2, 64, 96), mask=torch.zeros(2, 4, 6, dtype=torch.bool))


def test_fastervit_layer_depth(fvit, hat_model):
    p = 'backbone.'
    expected = {
        'stem.conv1.weight': 0,
        'mask_token': 0,
        'levels.0.blocks.0.conv1.weight': 1,
        'levels.0.blocks.1.norm2.bias': 2,
        'levels.0.downsample.reduction.weight': 3,  # first block of stage 2 = block 2
        'levels.1.blocks.0.conv1.bias': 3,
        'levels.1.blocks.2.conv2.weight': 5,
        'levels.1.downsample.norm.weight': 6,  # first block of stage 3 = block 5
        'levels.2.blocks.0.pos_mlp.mlp.0.weight': 6,
        'levels.2.blocks.5.attn.qkv.weight': 11,
        'levels.2.downsample.reduction.weight': 12,  # first block of stage 4 = block 11
        'levels.3.blocks.0.rel_pos.cpb_mlp.2.weight': 12,
        'levels.3.blocks.4.mlp.fc2.weight': 16,
        'norm.weight': 17,
    }
    for name, depth in expected.items():
        assert fvit.get_layer_depth(p + name, prefix=p) == (depth, 18), name
    assert fvit.get_layer_depth('decode_head.conv_seg.weight', prefix=p) == (17, 18)
    names = dict(fvit.named_parameters())
    assert set(expected) <= set(names)
    top = {n for n in names if fvit.get_layer_depth(n)[0] == 17}
    assert top == {'norm.weight', 'norm.bias'}
    hat = hat_model
    assert hat.get_layer_depth('levels.2.ct_init.pos_conv.weight') == (6, 18)
    assert hat.get_layer_depth('levels.3.blocks.1.ct_block.attn.qkv.weight') == (13, 18)


def test_fastervit_frozen_stages():
    model = FasterViT(frozen_stages=1)
    model.train()
    assert not model.mask_token.requires_grad
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.levels[0].parameters())
    assert all(p.requires_grad for p in model.levels[1].parameters())
    assert not model.stem.norm1.training and model.levels[1].blocks[0].norm1.training


def test_fastervit_bad_inputs(fvit):
    with pytest.raises(ValueError, match=r"unknown arch 'x'.*\['0'\]"):
        FasterViT(arch='x')
    with pytest.raises(ValueError, match='expected 2 input channels, got 3'):
        fvit(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match='too small'):
        fvit(torch.randn(1, 2, 16, 64))
    with pytest.raises(ValueError, match='out_indices'):
        FasterViT(out_indices=(5,))


def test_mask_token_receives_gradients(fvit):
    fvit.zero_grad()
    out = fvit.forward_ssl(torch.randn(1, 2, 64, 64), mask=torch.ones(1, 2, 2, dtype=torch.bool))
    out['x_norm_clstoken'].pow(2).sum().backward()
    assert fvit.mask_token.grad.abs().sum() > 0
    fvit.zero_grad(set_to_none=True)
