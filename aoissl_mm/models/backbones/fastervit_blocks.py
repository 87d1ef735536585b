"""FasterViT-specific blocks: stem, conv blocks, downsampling, HAT and levels.

Paper: Hatamizadeh et al., "FasterViT: Fast Vision Transformers with
Hierarchical Attention", ICLR 2024. Written from the paper and from the
behavioural description of the AOI-SSL spec (§3); no NVIDIA code (whose licence
is non-commercial) was consulted or copied.

The layers shared with other models (attention, MLP, window partitioning,
position MLP, continuous relative-position bias) live in
:mod:`aoissl_mm.models.utils`; this module assembles them into FasterViT's
window transformer block, the hierarchical-attention (HAT) carrier-token
blocks and the four levels of the backbone.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmpretrain.models.utils import LayerNorm2d
from torch import nn

from ..utils import (
    Attention,
    ContinuousRelativePositionBias,
    Mlp,
    PositionMLP,
    window_partition,
    window_reverse,
)

__all__ = [
    'Stem', 'ConvBlock', 'Downsample', 'CarrierTokenInit', 'CarrierTokenBlock',
    'WindowTransformerBlock', 'FasterViTLevel'
]


class Stem(nn.Module):
    """Overlapping tokeniser: two conv3x3/stride-2 + BN(eps 1e-4) + ReLU.

    Args:
        in_channels (int): Image channels.
        in_dim (int): Hidden width after the first conv.
        dim (int): Output width.
    """

    def __init__(self, in_channels: int, in_dim: int, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_dim, 3, stride=2, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(in_dim, eps=1e-4)
        self.conv2 = nn.Conv2d(in_dim, dim, 3, stride=2, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(dim, eps=1e-4)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_channels, H, W)`` to ``(B, dim, ceil(H/4), ceil(W/4))``."""
        x = self.act(self.norm1(self.conv1(x)))
        return self.act(self.norm2(self.conv2(x)))


class ConvBlock(nn.Module):
    """Residual block conv3x3 -> BN -> GELU -> conv3x3 -> BN, plus identity.

    Args:
        dim (int): Channels.
        drop_path (float): Stochastic-depth rate of the residual branch.
    """

    def __init__(self, dim: int, drop_path: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1, bias=True)
        self.norm1 = nn.BatchNorm2d(dim)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, bias=True)
        self.norm2 = nn.BatchNorm2d(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to a ``(B, dim, H, W)`` map."""
        y = self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))
        return x + self.drop_path(y)


class Downsample(nn.Module):
    """LayerNorm2d (channel axis, eps 1e-5) then conv3x3 stride 2 (no bias).

    Args:
        dim (int): Input channels.
        out_dim (int): Output channels (2 * dim in FasterViT).
    """

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = LayerNorm2d(dim, eps=1e-5)
        self.reduction = nn.Conv2d(dim, out_dim, 3, stride=2, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halve the resolution of a ``(B, dim, H, W)`` map (ceil)."""
        return self.reduction(self.norm(x))


class CarrierTokenInit(nn.Module):
    """Carrier-token initialiser of hierarchical attention (HAT).

    A depthwise conv3x3 positional encoding followed by average pooling of
    every ``window x window`` window into ``ct_size x ct_size`` tokens.

    Args:
        dim (int): Channels.
        window_size (int): Window side.
        ct_size (int): Carrier tokens per window side (<= window_size).
    """

    def __init__(self, dim: int, window_size: int, ct_size: int) -> None:
        super().__init__()
        self.window_size = window_size
        self.ct_size = ct_size
        self.pos_conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Summarise a padded ``(B, C, Hp, Wp)`` map.

        Returns:
            torch.Tensor: ``(B, C, Hp/ws*ct, Wp/ws*ct)`` carrier-token grid;
            every pooling bin lies inside one window.
        """
        _, _, h, w = x.shape
        out = (h // self.window_size * self.ct_size, w // self.window_size * self.ct_size)
        return F.adaptive_avg_pool2d(self.pos_conv(x), out)


class CarrierTokenBlock(nn.Module):
    """Global attention among all carrier tokens of an image (HAT).

    ``ct + pos``, then pre-LN attention and pre-LN MLP, each residual.

    Args:
        dim (int): Token width.
        num_heads (int): Attention heads.
        mlp_ratio (float): MLP hidden width / dim.
        drop_path (float): Stochastic-depth rate.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.pos_mlp = PositionMLP(dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, ct: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Update ``(B, Hc*Wc, dim)`` carrier tokens laid out on ``grid``."""
        ct = ct + self.pos_mlp(grid[0], grid[1], ct)
        ct = ct + self.drop_path(self.attn(self.norm1(ct)))
        return ct + self.drop_path(self.mlp(self.norm2(ct)))


class WindowTransformerBlock(nn.Module):
    """FasterViT transformer block on windowed tokens.

    ``x + pos``; ``x + attn(LN(x)) + cpb``; ``x + MLP(LN(x))``. With carrier
    tokens (HAT), the carrier tokens are first updated by a
    :class:`CarrierTokenBlock`, each window's ``ct_size**2`` carrier tokens are
    appended to its local tokens for the window attention and MLP (zero
    relative bias for carrier-token pairs), and split off again.

    Args:
        dim (int): Token width.
        num_heads (int): Attention heads.
        window_size (int): Window side.
        mlp_ratio (float): MLP hidden width / dim. Defaults to 4.
        drop_path (float): Stochastic-depth rate. Defaults to 0.
        hat (bool): Build the carrier-token sub-block. Defaults to False.
        ct_size (int): Carrier tokens per window side. Defaults to 2.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 window_size: int,
                 mlp_ratio: float = 4.0,
                 drop_path: float = 0.0,
                 hat: bool = False,
                 ct_size: int = 2) -> None:
        super().__init__()
        self.window_size = window_size
        self.ct_size = ct_size
        self.pos_mlp = PositionMLP(dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.rel_pos = ContinuousRelativePositionBias(window_size, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.ct_block = CarrierTokenBlock(dim, num_heads, mlp_ratio, drop_path) if hat else None

    def forward(self,
                x: torch.Tensor,
                ct: Optional[torch.Tensor] = None,
                grid: Tuple[int, int] = (1, 1)) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Apply the block.

        Args:
            x (torch.Tensor): ``(B * nH * nW, ws*ws, dim)`` window tokens.
            ct (torch.Tensor, optional): ``(B, nH*ct * nW*ct, dim)`` carrier
                tokens (HAT only).
            grid (Tuple[int, int]): ``(nH, nW)`` windows per image.

        Returns:
            Tuple[torch.Tensor, Optional[torch.Tensor]]: Updated window
            tokens and carrier tokens.
        """
        ws = self.window_size
        x = x + self.pos_mlp(ws, ws, x)
        bias = self.rel_pos()
        n_local = x.shape[1]
        if ct is not None:
            if self.ct_block is None:
                raise RuntimeError('WindowTransformerBlock: carrier tokens given to a block '
                                   'built with hat=False')
            cs = self.ct_size
            hc, wc = grid[0] * cs, grid[1] * cs
            ct = self.ct_block(ct, (hc, wc))
            ct_map = ct.transpose(1, 2).reshape(-1, ct.shape[-1], hc, wc)
            x = torch.cat([x, window_partition(ct_map, cs)], dim=1)
            bias = F.pad(bias, (0, cs * cs, 0, cs * cs))
        x = x + self.drop_path(self.attn(self.norm1(x), bias))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        if ct is not None:
            x, ct_win = x[:, :n_local], x[:, n_local:]
            ct_map = window_reverse(ct_win, self.ct_size, hc, wc)
            ct = ct_map.flatten(2).transpose(1, 2)
        return x, ct


class FasterViTLevel(nn.Module):
    """One FasterViT level: a stage of blocks plus the trailing downsample.

    Conv levels run :class:`ConvBlock`s on the map. Transformer levels pad
    the map bottom/right with zeros to a multiple of the window, run
    :class:`WindowTransformerBlock`s on the windows (with carrier tokens when
    ``hat``, propagated back by nearest upsampling at the end of the stage),
    and crop back.

    Args:
        dim (int): Channels of the stage.
        depth (int): Blocks.
        num_heads (int): Attention heads (transformer levels).
        window_size (int): Window side (transformer levels).
        conv (bool): Conv level instead of transformer level.
        downsample (bool): Append a :class:`Downsample` to ``2 * dim``.
        mlp_ratio (float): MLP hidden width / dim.
        drop_path (Sequence[float]): Per-block stochastic-depth rates.
        hat (bool): Hierarchical attention with carrier tokens.
        ct_size (int): Carrier tokens per window side.
    """

    def __init__(self,
                 dim: int,
                 depth: int,
                 num_heads: int,
                 window_size: int,
                 conv: bool,
                 downsample: bool,
                 mlp_ratio: float,
                 drop_path: Sequence[float],
                 hat: bool = False,
                 ct_size: int = 2) -> None:
        super().__init__()
        self.conv = conv
        self.window_size = window_size
        self.hat = hat and not conv
        self.ct_size = ct_size
        if conv:
            self.blocks = nn.ModuleList(ConvBlock(dim, drop_path[i]) for i in range(depth))
        else:
            self.blocks = nn.ModuleList(
                WindowTransformerBlock(dim, num_heads, window_size, mlp_ratio, drop_path[i],
                                       hat=self.hat, ct_size=ct_size) for i in range(depth))
        self.ct_init = CarrierTokenInit(dim, window_size, ct_size) if self.hat else None
        self.downsample = Downsample(dim, 2 * dim) if downsample else None

    def forward_stage(self, x: torch.Tensor) -> torch.Tensor:
        """Run the blocks on a ``(B, dim, H, W)`` map (no downsample)."""
        if self.conv:
            for blk in self.blocks:
                x = blk(x)
            return x
        ws = self.window_size
        _, _, h, w = x.shape
        x = F.pad(x, (0, (-w) % ws, 0, (-h) % ws))
        hp, wp = x.shape[-2:]
        grid = (hp // ws, wp // ws)
        ct = None
        if self.hat:
            ct = self.ct_init(x).flatten(2).transpose(1, 2)
        tokens = window_partition(x, ws)
        for blk in self.blocks:
            tokens, ct = blk(tokens, ct, grid)
        x = window_reverse(tokens, ws, hp, wp)
        if ct is not None:
            ct_map = ct.transpose(1, 2).reshape(x.shape[0], x.shape[1], grid[0] * self.ct_size,
                                                grid[1] * self.ct_size)
            x = x + F.interpolate(ct_map, size=(hp, wp), mode='nearest')
        return x[:, :, :h, :w].contiguous()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return ``(stage output, level output)``; the latter is downsampled."""
        x = self.forward_stage(x)
        return x, (self.downsample(x) if self.downsample is not None else x)
