"""Tests of the FasterViT-0 and ViT-Tiny backbones and their weight loading."""
import logging
import math

import pytest
import torch
import torch.nn.functional as F

import aoissl_mm  # noqa: F401  (applies compat, registers modules)
from aoissl_mm.models.backbones import AOIViT, FasterViT, load_backbone_weights
from aoissl_mm.models.backbones.fastervit import (Attention, CarrierTokenInit,
                                                  ContinuousRelativePositionBias,
                                                  FasterViTLevel, grid_coords,
                                                  log_spaced_relative_coords, window_partition,
                                                  window_reverse)

torch.set_num_threads(2)


@pytest.fixture(scope='module')
def fvit() -> FasterViT:
    torch.manual_seed(0)
    return FasterViT().eval()


@pytest.fixture(scope='module')
def hat_model() -> FasterViT:
    torch.manual_seed(0)
    return FasterViT(hat=True, drop_path_rate=0.0).eval()


def small_vit(**kwargs) -> AOIViT:
    torch.manual_seed(0)
    kwargs.setdefault('img_size', 64)
    return AOIViT(**kwargs).eval()


# ------------------------------------------------------------------ registry
def test_registered_in_both_registries():
    from mmpretrain.registry import MODELS as P
    from mmseg.registry import MODELS as S
    for name in ('FasterViT', 'AOIViT'):
        assert S.get(name) is P.get(name) is not None
    vit = S.build(dict(type='AOIViT', img_size=32))
    assert isinstance(vit, AOIViT)


# ------------------------------------------------------------------ FasterViT
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


def test_log_spaced_relative_coords_hand_values():
    table = log_spaced_relative_coords(7)
    assert tuple(table.shape) == (13, 13, 2)
    # offset (dy, dx) = (6, 3): 6/6*8 = 8 -> log2(9)/3 ; 3/6*8 = 4 -> log2(5)/3
    dy, dx = table[6 + 6, 3 + 6].tolist()
    assert dy == pytest.approx(1.0566416671, abs=1e-6)
    assert dx == pytest.approx(0.7739760316, abs=1e-6)
    # offset (-2, 0): -2/6*8 = -8/3 -> -log2(11/3)/3
    dy, dx = table[-2 + 6, 0 + 6].tolist()
    assert dy == pytest.approx(-0.6248230809, abs=1e-6)
    assert dx == 0.0


def test_relative_position_bias_gathers_the_right_offset():
    torch.manual_seed(0)
    rpb = ContinuousRelativePositionBias(window_size=7, num_heads=3)
    bias = rpb()
    assert tuple(bias.shape) == (3, 49, 49)
    # query at (row 5, col 1), key at (row 2, col 4): offset (3, -3)
    q, k = 5 * 7 + 1, 2 * 7 + 4
    coord = torch.tensor([[math.log2(1 + 4.0) / 3, -math.log2(1 + 4.0) / 3]])
    expected = 16 * torch.sigmoid(rpb.cpb_mlp(coord))[0]
    torch.testing.assert_close(bias[:, q, k], expected)
    assert bias.min() > 0 and bias.max() < 16


def test_grid_coords_and_window_round_trip():
    c = grid_coords(7, 7)
    assert c[0].tolist() == [-1.0, -1.0] and c[-1].tolist() == [1.0, 1.0]
    assert c[3 * 7 + 4].tolist() == pytest.approx([0.0, 1 / 3], abs=1e-6)
    x = torch.arange(2 * 3 * 14 * 21, dtype=torch.float32).view(2, 3, 14, 21)
    win = window_partition(x, 7)
    assert tuple(win.shape) == (2 * 2 * 3, 49, 3)
    # window (b=1, row 1, col 2), token (r=3, c=5) -> pixel (7+3, 14+5)
    assert win[1 * 6 + 1 * 3 + 2, 3 * 7 + 5].tolist() == x[1, :, 10, 19].tolist()
    torch.testing.assert_close(window_reverse(win, 7, 14, 21), x)


def test_attention_matches_naive_softmax():
    torch.manual_seed(0)
    attn = Attention(dim=8, num_heads=2)
    x, bias = torch.randn(3, 5, 8), torch.randn(2, 5, 5)
    q, k, v = attn.qkv(x).view(3, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    w = torch.softmax(q @ k.transpose(-1, -2) / 2.0 + bias, dim=-1)  # scale 4 ** -0.5
    ref = attn.proj((w @ v).transpose(1, 2).reshape(3, 5, 8))
    torch.testing.assert_close(attn(x, bias), ref, atol=1e-5, rtol=1e-5)


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
    keys = fvit.no_weight_decay_keys()
    assert {'mask_token', 'pos_mlp', 'cpb_mlp'} <= set(keys)


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


# --------------------------------------------------------------------- ViT
def test_vit_parameter_count():
    model = AOIViT(img_size=512)
    # patch conv + cls + (1+1024) pos + mask + 6 blocks + final LN, counted by hand
    per_block = 2 * 384 + (384 * 1152 + 1152) + (384 * 384 + 384) + 2 * 384 \
        + (384 * 1536 + 1536) + (1536 * 384 + 384)
    expected = (2 * 256 * 384 + 384) + 384 + 1025 * 384 + 384 + 6 * per_block + 2 * 384
    assert sum(p.numel() for p in model.parameters()) == expected == 11_238_912
    assert model.blocks[0].norm1.eps == 1e-6 and model.norm.eps == 1e-6
    assert model.mask_token.abs().sum() == 0


@torch.no_grad()
def test_vit_outputs():
    model = small_vit()
    x = torch.randn(2, 2, 64, 96)
    outs = model(x)
    assert len(outs) == 4 and all(tuple(o.shape) == (2, 384, 4, 6) for o in outs)
    ssl = model.forward_ssl(x)
    assert tuple(ssl['x_norm_clstoken'].shape) == (2, 384)
    assert tuple(ssl['x_norm_patchtokens'].shape) == (2, 24, 384)
    assert tuple(ssl['x_prenorm'].shape) == (2, 25, 384)
    # the last returned map = final norm of the last block, CLS dropped, row-major
    ref = F.layer_norm(ssl['x_prenorm'], (384,), model.norm.weight, model.norm.bias, 1e-6)
    torch.testing.assert_close(ssl['x_norm_patchtokens'], ref[:, 1:])
    torch.testing.assert_close(outs[-1].flatten(2).transpose(1, 2), ref[:, 1:])
    raw = AOIViT(img_size=64, out_indices=(-1,), final_norm=False).eval()
    raw.load_state_dict(model.state_dict())
    torch.testing.assert_close(raw(x)[0].flatten(2).transpose(1, 2), ssl['x_prenorm'][:, 1:])


@torch.no_grad()
def test_vit_native_size_uses_table_unchanged():
    model = small_vit()
    assert model.pos_table((4, 4)) is model.pos_embed
    with torch.no_grad():
        model.patch_embed.proj.weight.zero_()
    tokens, grid = model.prepare_tokens(torch.randn(1, 2, 64, 64))
    assert grid == (4, 4)
    bias = model.patch_embed.proj.bias
    torch.testing.assert_close(tokens[0, 0], model.cls_token[0, 0] + model.pos_embed[0, 0])
    torch.testing.assert_close(tokens[0, 1:], bias + model.pos_embed[0, 1:])


@torch.no_grad()
def test_vit_position_interpolation_other_size():
    model = small_vit()
    model.pos_embed[:, 1:] = 0.25  # a constant table stays constant under bicubic resizing
    model.pos_embed[:, 0] = 3.0
    table = model.pos_table((6, 2))
    assert tuple(table.shape) == (1, 13, 384)
    torch.testing.assert_close(table[:, 1:], torch.full((1, 12, 384), 0.25))
    torch.testing.assert_close(table[:, 0], torch.full((1, 384), 3.0))
    assert tuple(model(torch.randn(1, 2, 96, 32))[0].shape) == (1, 384, 6, 2)


@torch.no_grad()
def test_vit_mask_token():
    model = small_vit()
    model.mask_token.normal_()
    x = torch.randn(2, 2, 64, 64)
    plain = model(x)
    for a, b in zip(plain, model(x, mask=torch.zeros(2, 4, 4, dtype=torch.bool))):
        torch.testing.assert_close(a, b)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, 1, 2] = True
    seen = {}
    hook = model.blocks[0].register_forward_pre_hook(lambda m, a: seen.update(x=a[0].clone()))
    try:
        masked = model(x, mask=mask)
    finally:
        hook.remove()
    idx = 1 * 4 + 2
    torch.testing.assert_close(seen['x'][0, 1 + idx],
                               model.mask_token[0] + model.pos_embed[0, 1 + idx])
    embed = model.patch_embed(x)
    torch.testing.assert_close(seen['x'][0, 1], embed[0, 0] + model.pos_embed[0, 1])
    assert not torch.allclose(masked[0][0], plain[0][0])
    torch.testing.assert_close(masked[0][1], plain[0][1])
    # a flattened (B, N) mask is the same mask
    for a, b in zip(masked, model(x, mask=mask.view(2, 16))):
        torch.testing.assert_close(a, b)


def test_vit_layer_depth():
    model = AOIViT(img_size=32)
    p = 'backbone.'
    expected = {'patch_embed.proj.weight': 0, 'cls_token': 0, 'pos_embed': 0, 'mask_token': 0,
                'blocks.0.norm1.weight': 1, 'blocks.3.attn.qkv.bias': 4,
                'blocks.5.mlp.fc2.weight': 6, 'norm.bias': 7}
    names = dict(model.named_parameters())
    for name, depth in expected.items():
        assert name in names
        assert model.get_layer_depth(p + name, prefix=p) == (depth, 8), name
    assert model.get_layer_depth('neck.decoder.weight', prefix=p) == (7, 8)
    assert set(model.no_weight_decay_keys()) == {'cls_token', 'pos_embed', 'mask_token'}


def test_layer_decay_constructor_uses_the_ids():
    from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
    model = AOIViT(img_size=32)
    ctor = LearningRateDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        dict(layer_decay_rate=0.5))
    groups = ctor(model).optimizer.param_groups
    scales = {g['param_name']: g['lr_scale'] for g in groups}
    assert scales['pos_embed'] == 0.5**7
    assert scales['blocks.0.attn.qkv.weight'] == 0.5**6
    assert scales['blocks.5.mlp.fc1.bias'] == 0.5**1
    assert scales['norm.weight'] == 1.0


def test_vit_bad_inputs():
    model = small_vit()
    with pytest.raises(ValueError, match=r"unknown arch 'base'.*\['tiny'\]"):
        AOIViT(arch='base')
    with pytest.raises(ValueError, match='expected 2 input channels, got 1'):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match='72x64 is not a multiple of the patch size 16'):
        model(torch.randn(1, 2, 72, 64))
    with pytest.raises(ValueError, match='too small'):
        model(torch.randn(1, 2, 0, 64))
    with pytest.raises(ValueError, match='mask must have shape'):
        model(torch.randn(1, 2, 64, 64), mask=torch.zeros(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match='out_indices'):
        AOIViT(img_size=32, out_indices=(6,))



def test_mask_tokens_receive_gradients(fvit):
    vit = small_vit()
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 0, 0] = True
    vit.forward_ssl(torch.randn(1, 2, 64, 64), mask=mask)['x_norm_patchtokens'].sum().backward()
    assert vit.mask_token.grad.abs().sum() > 0
    fvit.zero_grad()
    out = fvit.forward_ssl(torch.randn(1, 2, 64, 64), mask=torch.ones(1, 2, 2, dtype=torch.bool))
    out['x_norm_clstoken'].pow(2).sum().backward()
    assert fvit.mask_token.grad.abs().sum() > 0
    fvit.zero_grad(set_to_none=True)


def test_aoivit_outputs_follow_out_indices_order():
    torch.manual_seed(0)
    a = AOIViT(img_size=32, out_indices=(2, 5)).eval()
    b = AOIViT(img_size=32, out_indices=(5, 2)).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 2, 32, 32)
    with torch.no_grad():
        oa, ob = a(x), b(x)
    assert torch.allclose(oa[0], ob[1]) and torch.allclose(oa[1], ob[0])
    assert not torch.allclose(oa[0], oa[1])
