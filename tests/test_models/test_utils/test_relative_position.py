"""Tests of ``aoissl_mm/models/utils/relative_position.py``."""
import math

import pytest
import torch

from aoissl_mm.models.utils import ContinuousRelativePositionBias, log_spaced_relative_coords


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
