"""Tests of ``aoissl_mm/models/utils/window_ops.py``."""
import pytest
import torch

from aoissl_mm.models.utils import grid_coords, window_partition, window_reverse


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
