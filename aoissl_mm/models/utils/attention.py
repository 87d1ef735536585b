"""Multi-head self-attention with an optional additive logit bias.

Shared by the FasterViT window/carrier-token blocks and the ViT blocks (and
the SSL decoders built on them). Parameter names (``qkv``, ``proj``) follow
DINOv2/timm so ViT checkpoints load unchanged. Written from the Transformer
and FasterViT papers and the AOI-SSL spec; no NVIDIA code (non-commercial
licence) was consulted or copied.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['Attention']


class Attention(nn.Module):
    """Multi-head self-attention with an optional additive logit bias.

    Uses :func:`torch.nn.functional.scaled_dot_product_attention` (scale
    ``head_dim ** -0.5``); the bias is passed as its float ``attn_mask``.

    Args:
        dim (int): Token width.
        num_heads (int): Heads; must divide ``dim``.
        qkv_bias (bool): Bias on the qkv projection. Defaults to True.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'Attention: dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attend over the tokens of each sequence.

        Args:
            x (torch.Tensor): ``(B, N, dim)`` tokens.
            bias (torch.Tensor, optional): Additive logit bias broadcastable
                to ``(B, heads, N, N)``.

        Returns:
            torch.Tensor: ``(B, N, dim)``.
        """
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if bias is not None:
            bias = bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))
