"""Tests of the ViT-Tiny backbone (``aoissl_mm/models/backbones/aoi_vit.py``).

The optimiser wiring of its layer ids is tested in ``test_layer_decay.py``.
"""
import pytest
import torch
import torch.nn.functional as F

import aoissl_mm  # noqa: F401  (applies compat, registers modules)
from aoissl_mm.models.backbones import AOIViT

torch.set_num_threads(2)


def small_vit(**kwargs) -> AOIViT:
    torch.manual_seed(0)
    kwargs.setdefault('img_size', 64)
    return AOIViT(**kwargs).eval()


def test_registered_in_both_registries():
    from mmpretrain.registry import MODELS as P
    from mmseg.registry import MODELS as S
    assert S.get('AOIViT') is P.get('AOIViT') is not None
    vit = S.build(dict(type='AOIViT', img_size=32))
    assert isinstance(vit, AOIViT)


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
def test_vit_position_interpolation_is_bicubic_with_the_dino_offset():
    model = small_vit()  # 64 px: a 4x4 table
    model.pos_embed.normal_()  # a non-constant table, so mode and offset matter
    table = model.pos_table((6, 2))
    grid = model.pos_embed[:, 1:].reshape(1, 4, 4, 384).permute(0, 3, 1, 2)
    # the DINO offset: explicit scale factors (out + 0.1) / in, here (6.1 / 4, 2.1 / 4)
    ref = F.interpolate(grid, scale_factor=(6.1 / 4, 2.1 / 4), mode='bicubic',
                        align_corners=False)
    assert tuple(ref.shape[-2:]) == (6, 2)
    ref = ref.permute(0, 2, 3, 1).reshape(1, 12, 384)
    torch.testing.assert_close(table[:, 1:], ref)
    torch.testing.assert_close(table[:, 0], model.pos_embed[:, 0])  # CLS slot copied
    # the reference tells the variants apart: resizing to the exact size, or bilinear
    exact = F.interpolate(grid, size=(6, 2), mode='bicubic', align_corners=False)
    bilinear = F.interpolate(grid, scale_factor=(6.1 / 4, 2.1 / 4), mode='bilinear',
                             align_corners=False)
    for wrong in (exact, bilinear):
        wrong = wrong.permute(0, 2, 3, 1).reshape(1, 12, 384)
        assert (table[:, 1:] - wrong).abs().max() > 1e-2
    # interpolate_offset=0 resizes to the exact size
    plain = small_vit(interpolate_offset=0.0)
    plain.pos_embed.copy_(model.pos_embed)
    torch.testing.assert_close(plain.pos_table((6, 2))[:, 1:],
                               exact.permute(0, 2, 3, 1).reshape(1, 12, 384))
    # the forward adds this table: with a zero patch projection, tokens = bias + positions
    model.patch_embed.proj.weight.zero_()
    tokens, grid_hw = model.prepare_tokens(torch.randn(1, 2, 96, 32))
    assert grid_hw == (6, 2)
    torch.testing.assert_close(tokens[0, 1:], model.patch_embed.proj.bias + ref[0])


@torch.no_grad()
def test_vit_default_out_indices_are_blocks_2_to_5():
    model = small_vit(img_size=(64, 96))  # native grid 4x6: the table is used unchanged
    assert model.out_indices == (2, 3, 4, 5)
    x = torch.randn(2, 2, 64, 96)
    outs = model(x)
    # hand-run: patch conv, CLS, positions, the 6 blocks; final norm (eps 1e-6), CLS dropped
    proj = model.patch_embed.proj
    tokens = F.conv2d(x, proj.weight, proj.bias, stride=16).flatten(2).transpose(1, 2)
    tokens = torch.cat([model.cls_token.expand(2, 1, 384), tokens], dim=1) + model.pos_embed
    normed = []
    for blk in model.blocks:
        tokens = blk(tokens)
        normed.append(F.layer_norm(tokens, (384, ), model.norm.weight, model.norm.bias, 1e-6))
    maps = [n[:, 1:].transpose(1, 2).reshape(2, 384, 4, 6) for n in normed]
    assert len(outs) == 4
    for out, i in zip(outs, (2, 3, 4, 5)):
        torch.testing.assert_close(out, maps[i])
    # consecutive blocks give different maps, so a shifted index would be caught
    for i in range(1, 6):
        assert (maps[i] - maps[i - 1]).abs().max() > 1e-3


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


def test_mask_token_receives_gradients():
    vit = small_vit()
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 0, 0] = True
    vit.forward_ssl(torch.randn(1, 2, 64, 64), mask=mask)['x_norm_patchtokens'].sum().backward()
    assert vit.mask_token.grad.abs().sum() > 0


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
