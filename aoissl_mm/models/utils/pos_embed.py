"""Absolute position embeddings: a learned 2-D position MLP and table resizing.

:class:`PositionMLP` is FasterViT's learned absolute position term (an MLP
evaluated on normalised grid coordinates, so it exists for any grid size);
:func:`interpolate_pos_table` resizes a ViT's learned position table to
another token grid (bicubic, with DINO's scale-factor offset). Written from
the FasterViT and DINO papers and the AOI-SSL spec; no NVIDIA code
(non-commercial licence) was consulted or copied.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .window_ops import grid_coords

__all__ = ['PositionMLP', 'interpolate_pos_table']


class PositionMLP(nn.Module):
    """Learned absolute 2-D position term: MLP 2 -> hidden -> dim (ReLU).

    Evaluated on :func:`grid_coords` of the requested grid. The second linear
    layer has no bias (this reproduces the reference FasterViT-0 parameter
    count of 25,320,704).

    Args:
        dim (int): Output width.
        hidden_dim (int): Hidden width. Defaults to 512.
    """

    def __init__(self, dim: int, hidden_dim: int = 512) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2, hidden_dim, bias=True), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, dim, bias=False))

    def forward(self, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
        """Position terms of a ``height x width`` grid.

        Args:
            height (int): Grid rows.
            width (int): Grid columns.
            like (torch.Tensor): Tensor giving device and dtype.

        Returns:
            torch.Tensor: ``(height * width, dim)``, row-major.
        """
        coords = grid_coords(height, width).to(device=like.device, dtype=self.mlp[0].weight.dtype)
        return self.mlp(coords).to(like.dtype)


def interpolate_pos_table(patch_pos: torch.Tensor, grid: Tuple[int, int],
                          out_grid: Tuple[int, int], offset: float = 0.1) -> torch.Tensor:
    """Resize the patch part of a position table (bicubic, no antialias).

    With ``offset > 0`` the DINO trick is used: ``scale_factor = (out + offset)
    / in`` per axis instead of an output size (the sampling grid is slightly
    stretched); the result is ``out_grid`` either way.

    Args:
        patch_pos (torch.Tensor): ``(1, gh * gw, C)`` table (no CLS slot).
        grid (Tuple[int, int]): Its grid ``(gh, gw)``.
        out_grid (Tuple[int, int]): Wanted grid ``(oh, ow)``.
        offset (float): Scale-factor offset. Defaults to 0.1.

    Returns:
        torch.Tensor: ``(1, oh * ow, C)`` table in the input dtype.
    """
    if tuple(grid) == tuple(out_grid):
        return patch_pos
    dtype = patch_pos.dtype
    c = patch_pos.shape[-1]
    table = patch_pos.float().reshape(1, grid[0], grid[1], c).permute(0, 3, 1, 2)
    if offset:
        scale = ((out_grid[0] + offset) / grid[0], (out_grid[1] + offset) / grid[1])
        table = F.interpolate(table, scale_factor=scale, mode='bicubic', align_corners=False,
                              antialias=False)
    else:
        table = F.interpolate(table, size=tuple(out_grid), mode='bicubic', align_corners=False,
                              antialias=False)
    if tuple(table.shape[-2:]) != tuple(out_grid):
        raise RuntimeError(f'interpolate_pos_table: resized {grid} to {tuple(table.shape[-2:])}, '
                           f'expected {tuple(out_grid)}')
    return table.permute(0, 2, 3, 1).reshape(1, -1, c).to(dtype)
