"""Tests of ``aoissl_mm/models/utils/pos_embed.py``.

The position-table resize is checked against a hand-written bicubic resampler
(cubic convolution with a = -0.75, half-pixel centres, border clamping: the
behaviour ``interpolate_pos_table`` documents), not against ``F.interpolate``.
"""
import math

import pytest
import torch

from aoissl_mm.models.utils import PositionMLP, interpolate_pos_table


def _cubic(d: float, a: float = -0.75) -> float:
    d = abs(d)
    if d <= 1:
        return ((a + 2) * d - (a + 3)) * d * d + 1
    if d < 2:
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return 0.0


def _resample_matrix(n_in: int, n_out: int, scale: float) -> torch.Tensor:
    """Row o: weights of the inputs for output o; source = (o + 0.5) / scale - 0.5."""
    w = torch.zeros(n_out, n_in, dtype=torch.float64)
    for o in range(n_out):
        src = (o + 0.5) / scale - 0.5
        base = math.floor(src)
        for j in range(base - 1, base + 3):
            w[o, min(max(j, 0), n_in - 1)] += _cubic(src - j)
    return w


def _hand_resize(patch_pos, grid, out_grid, offset):
    c = patch_pos.shape[-1]
    table = patch_pos.double().reshape(grid[0], grid[1], c)
    # DINO offset: the scale factor is (out + offset) / in instead of out / in
    wh = _resample_matrix(grid[0], out_grid[0], (out_grid[0] + offset) / grid[0])
    ww = _resample_matrix(grid[1], out_grid[1], (out_grid[1] + offset) / grid[1])
    out = torch.einsum('oh,hwc,pw->opc', wh, table, ww)
    return out.reshape(1, -1, c).float()


@pytest.mark.parametrize('grid,out_grid', [((4, 4), (6, 2)), ((3, 5), (7, 4))])
@pytest.mark.parametrize('offset', [0.1, 0.0])
def test_interpolate_pos_table_matches_hand_bicubic(grid, out_grid, offset):
    torch.manual_seed(0)
    patch_pos = torch.randn(1, grid[0] * grid[1], 3)
    out = interpolate_pos_table(patch_pos, grid, out_grid, offset=offset)
    assert tuple(out.shape) == (1, out_grid[0] * out_grid[1], 3)
    torch.testing.assert_close(out, _hand_resize(patch_pos, grid, out_grid, offset),
                               atol=1e-5, rtol=1e-5)
    # the offset matters: the other convention gives a clearly different table
    other = _hand_resize(patch_pos, grid, out_grid, 0.1 - offset)
    assert (out - other).abs().max() > 1e-2


def test_interpolate_pos_table_native_grid_and_dtype():
    patch_pos = torch.randn(1, 16, 4)
    assert interpolate_pos_table(patch_pos, (4, 4), (4, 4)) is patch_pos
    half = interpolate_pos_table(patch_pos.bfloat16(), (4, 4), (2, 6))
    assert half.dtype == torch.bfloat16 and tuple(half.shape) == (1, 12, 4)


def test_position_mlp_on_the_normalised_grid():
    torch.manual_seed(0)
    pos = PositionMLP(dim=5, hidden_dim=7)
    assert pos.mlp[2].bias is None  # no bias on the output layer
    out = pos(2, 3, torch.zeros(1))
    # a 2x3 grid: rows at y = -1, 1 and columns at x = -1, 0, 1, row-major
    coords = torch.tensor([[-1., -1.], [-1., 0.], [-1., 1.], [1., -1.], [1., 0.], [1., 1.]])
    w1, b1, w2 = pos.mlp[0].weight, pos.mlp[0].bias, pos.mlp[2].weight
    ref = torch.clamp(coords @ w1.T + b1, min=0) @ w2.T
    torch.testing.assert_close(out, ref)
    assert pos(2, 3, torch.zeros(1, dtype=torch.float64)).dtype == torch.float64
