"""Continuous relative-position bias of a square attention window.

Swin-Transformer-v2's log-spaced continuous position bias, as used by
FasterViT's window attention: a small MLP maps log-spaced relative
coordinates to per-head logits, squashed by ``16 * sigmoid``. Written from
the Swin-v2 and FasterViT papers and the AOI-SSL spec; no NVIDIA code
(non-commercial licence) was consulted or copied.
"""
import math

import torch
from torch import nn

__all__ = ['ContinuousRelativePositionBias', 'log_spaced_relative_coords']


def log_spaced_relative_coords(window_size: int) -> torch.Tensor:
    """Swin-v2 log-spaced relative coordinates of a square window.

    Each relative offset ``d`` in ``-(ws-1)..(ws-1)`` (per axis) becomes
    ``x = d / (ws - 1) * 8`` and then ``sign(x) * log2(1 + |x|) / log2(8)``.

    Args:
        window_size (int): Window side ``ws`` (>= 2).

    Returns:
        torch.Tensor: ``(2*ws-1, 2*ws-1, 2)`` float tensor; entry
        ``[dy + ws - 1, dx + ws - 1]`` holds the transformed ``(dy, dx)``.
    """
    if window_size < 2:
        raise ValueError(f'log_spaced_relative_coords: window_size must be >= 2, got {window_size}')
    d = torch.arange(-(window_size - 1), window_size, dtype=torch.float32)
    dy, dx = torch.meshgrid(d, d, indexing='ij')
    table = torch.stack([dy, dx], dim=-1) / (window_size - 1) * 8.0
    return torch.sign(table) * torch.log2(1.0 + table.abs()) / math.log2(8.0)


class ContinuousRelativePositionBias(nn.Module):
    """Swin-v2 continuous relative-position bias of a square window.

    An MLP 2 -> hidden -> heads (ReLU, no bias on the last layer) maps the
    :func:`log_spaced_relative_coords` table to per-head logits, gathered for
    every query/key pair and squashed by ``16 * sigmoid``.

    Args:
        window_size (int): Window side.
        num_heads (int): Attention heads.
        hidden_dim (int): MLP hidden width. Defaults to 512.
    """

    def __init__(self, window_size: int, num_heads: int, hidden_dim: int = 512) -> None:
        super().__init__()
        self.window_size = window_size
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, hidden_dim, bias=True), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, num_heads, bias=False))
        self.register_buffer('coords_table', log_spaced_relative_coords(window_size).view(-1, 2),
                             persistent=False)
        pos = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size),
                                         indexing='ij')).flatten(1)  # (2, ws*ws): (y, x)
        rel = pos[:, :, None] - pos[:, None, :] + (window_size - 1)  # (2, N, N)
        index = rel[0] * (2 * window_size - 1) + rel[1]
        self.register_buffer('relative_index', index, persistent=False)

    def forward(self) -> torch.Tensor:
        """Return the ``(heads, ws*ws, ws*ws)`` bias, ``16 * sigmoid(.)``."""
        table = self.cpb_mlp(self.coords_table)  # ((2ws-1)^2, heads)
        n = self.window_size * self.window_size
        bias = table[self.relative_index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        return 16.0 * torch.sigmoid(bias)
