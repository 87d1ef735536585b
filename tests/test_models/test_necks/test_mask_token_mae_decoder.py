"""MaskTokenMAEDecoder: sin-cos table against the formula, spatial order, mask tokens, init."""
import math

import pytest
import torch

from aoissl_mm.models.necks import MaskTokenMAEDecoder
from aoissl_mm.models.necks.mask_token_mae_decoder import sincos_pos_table_2d

torch.set_num_threads(2)


def _loop_table(rows, cols, dim):
    """Spec §4.2 written out: per axis d = dim/2 channels, w_i = 1/10000^(2i/d),
    [sin(x w_i)..., cos(x w_i)...]; first half the column x, second half the row y."""
    d = dim // 2
    table = []
    for r in range(rows):
        for c in range(cols):
            vec = []
            for pos in (c, r):
                freqs = [1.0 / 10000**(2 * i / d) for i in range(d // 2)]
                vec += [math.sin(pos * f) for f in freqs] + [math.cos(pos * f) for f in freqs]
            table.append(vec)
    return torch.tensor(table, dtype=torch.float64)


def test_sincos_table_by_hand_tiny():
    # dim 8: frequencies 1 and 1/100; token 5 of a 2x3 grid is row 1, column 2
    t = sincos_pos_table_2d((2, 3), 8)
    assert t.shape == (6, 8)
    expect = [math.sin(2), math.sin(0.02), math.cos(2), math.cos(0.02),
              math.sin(1), math.sin(0.01), math.cos(1), math.cos(0.01)]
    assert torch.allclose(t[5].double(), torch.tensor(expect, dtype=torch.float64), atol=1e-6)
    # token 0 (0, 0): sin 0 = 0, cos 0 = 1
    assert t[0].tolist() == [0, 0, 1, 1, 0, 0, 1, 1]


@pytest.mark.parametrize('grid', [(3, 5), (4, 4), (1, 7)])
def test_sincos_table_matches_formula(grid):
    t = sincos_pos_table_2d(grid, 384)
    ref = _loop_table(*grid, 384)
    assert t.dtype == torch.float32 and t.shape == ref.shape
    assert torch.allclose(t.double(), ref, atol=1e-5)


def test_sincos_table_bad_dim():
    with pytest.raises(ValueError, match='multiple of 4'):
        sincos_pos_table_2d((2, 2), 30)
    with pytest.raises(ValueError, match='embed_dims must be a multiple of 4'):
        MaskTokenMAEDecoder(embed_dims=30, num_heads=5)


def _decoder(**kwargs):
    torch.manual_seed(0)
    kwargs = dict(dict(in_channels=24, embed_dims=32, depth=2, num_heads=4, patch_size=4,
                       out_channels=2), **kwargs)
    return MaskTokenMAEDecoder(**kwargs).eval()


def _capture_block_input(dec, tokens, mask):
    seen = {}
    handle = dec.decoder_blocks[0].register_forward_pre_hook(
        lambda mod, args: seen.setdefault('x', args[0].detach().clone()))
    with torch.no_grad():
        out = dec(tokens, mask)
    handle.remove()
    return seen['x'], out


def test_decoder_sees_units_in_spatial_order_with_mask_token():
    dec = _decoder()
    grid = (2, 3)  # not square: rows and columns must not be confused
    tokens = torch.randn(2, 6, 24)
    mask = torch.tensor([[[1, 0, 0], [0, 1, 1]], [[0, 0, 1], [1, 0, 0]]], dtype=torch.bool)
    x, out = _capture_block_input(dec, tokens, mask)
    assert out.shape == (2, 6, 4 * 4 * 2)
    pos = _loop_table(*grid, 32).float()
    w, b = dec.decoder_embed.weight, dec.decoder_embed.bias
    token = dec.mask_token.detach().view(-1)
    for n in range(2):
        for t in range(6):
            r, c = divmod(t, 3)
            if mask[n, r, c]:
                expect = token + pos[t]
            else:
                expect = tokens[n, t] @ w.detach().T + b.detach() + pos[t]
            assert torch.allclose(x[n, t], expect, atol=1e-5), (n, t)


def test_keep_encoder_tokens_at_mask():
    dec = _decoder(keep_encoder_tokens_at_mask=True)
    tokens = torch.randn(1, 4, 24)
    mask = torch.ones(1, 2, 2, dtype=torch.bool)
    x, _ = _capture_block_input(dec, tokens, mask)
    with torch.no_grad():
        expect = dec.decoder_embed(tokens) + _loop_table(2, 2, 32).float()
    assert torch.allclose(x, expect, atol=1e-5)


def test_masked_content_does_not_reach_the_decoder():
    dec = _decoder()
    tokens = torch.randn(1, 4, 24)
    mask = torch.tensor([[[True, False], [False, False]]])
    changed = tokens.clone()
    changed[0, 0] += 10.0  # the masked unit
    with torch.no_grad():
        assert torch.allclose(dec(tokens, mask), dec(changed, mask))
        changed[0, 1] += 10.0  # a visible unit
        assert not torch.allclose(dec(tokens, mask), dec(changed, mask))


def test_bad_shapes_are_named():
    dec = _decoder()
    with pytest.raises(ValueError, match=r'tokens must be \(B, L, 24\)'):
        dec(torch.randn(1, 4, 20), torch.zeros(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match='mask must be'):
        dec(torch.randn(1, 4, 24), torch.zeros(1, 3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match='in_channels'):
        MaskTokenMAEDecoder(in_channels=0)


def test_default_init_follows_spec():
    dec = MaskTokenMAEDecoder(in_channels=512, patch_size=32)
    with torch.no_grad():
        for m in dec.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.fill_(5.0)
                m.bias.fill_(5.0)
            elif isinstance(m, torch.nn.LayerNorm):
                m.weight.fill_(3.0)
                m.bias.fill_(3.0)
        dec.mask_token.fill_(5.0)
    dec.init_weights()
    assert dec.decoder_pred.out_features == 32 * 32 * 2
    for name, m in dec.named_modules():
        if isinstance(m, torch.nn.Linear):
            bound = math.sqrt(6.0 / (m.in_features + m.out_features))  # xavier-uniform
            assert m.weight.abs().max() <= bound + 1e-7, name
            assert m.weight.abs().max() > 0.9 * bound, name
            assert torch.count_nonzero(m.bias) == 0, name
        elif isinstance(m, torch.nn.LayerNorm):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0), name
    std = dec.mask_token.std().item()
    assert 0.015 < std < 0.025 and abs(dec.mask_token.mean().item()) < 0.005
