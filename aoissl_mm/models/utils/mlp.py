"""Transformer feed-forward block (Linear -> GELU -> Linear).

Shared by the FasterViT and ViT blocks; parameter names ``fc1``/``fc2``
follow DINOv2/timm. Written from the Transformer paper and the AOI-SSL spec;
no NVIDIA code (non-commercial licence) was consulted or copied.
"""
import torch
from torch import nn

__all__ = ['Mlp']


class Mlp(nn.Module):
    """Transformer feed-forward: Linear -> GELU -> Linear.

    Args:
        dim (int): Input/output width.
        hidden_dim (int): Hidden width.
    """

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to ``(..., dim)`` tokens."""
        return self.fc2(self.act(self.fc1(x)))
