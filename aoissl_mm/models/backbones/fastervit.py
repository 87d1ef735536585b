"""FasterViT-0 ("any-resolution" variant) for 2-channel AOI images.

Paper: Hatamizadeh et al., "FasterViT: Fast Vision Transformers with
Hierarchical Attention", ICLR 2024. Written from the paper and from the
behavioural description of the AOI-SSL spec (§3); no NVIDIA code (whose licence
is non-commercial) was consulted or copied.

Layout (arch '0'): a two-conv stride-4 stem, two stages of residual conv blocks
(64 and 128 channels), two stages of windowed transformer blocks (256 and 512
channels, 7x7 non-shifted windows, learned 2-D positional MLP, Swin-v2-style
continuous relative-position bias), a LayerNorm2d + strided conv downsample
after stages 1-3 and a final LayerNorm2d. Feature maps of the transformer
stages are zero-padded bottom/right to a multiple of the window and cropped
back, so any input size works. The optional hierarchical attention (HAT,
``hat=True``) adds carrier tokens to stages 3-4.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmseg.registry import MODELS as SEG_MODELS
from torch import nn
from torch.nn.init import trunc_normal_

from .pretrained import init_backbone_weights

__all__ = [
    'FasterViT', 'LayerNorm2d', 'Stem', 'ConvBlock', 'Downsample', 'Mlp', 'Attention',
    'PositionMLP', 'ContinuousRelativePositionBias', 'CarrierTokenInit', 'CarrierTokenBlock',
    'WindowTransformerBlock', 'FasterViTLevel', 'window_partition', 'window_reverse',
    'grid_coords', 'log_spaced_relative_coords'
]


# --------------------------------------------------------------------------
# coordinate and window helpers
# --------------------------------------------------------------------------
def grid_coords(height: int, width: int) -> torch.Tensor:
    """Normalised (-1..1) row-major coordinates of a ``height x width`` grid.

    Args:
        height (int): Grid rows.
        width (int): Grid columns.

    Returns:
        torch.Tensor: ``(height * width, 2)`` float tensor of ``(y, x)``; an
        axis of length 1 has coordinate 0.
    """
    ys = torch.linspace(-1.0, 1.0, height) if height > 1 else torch.zeros(1)
    xs = torch.linspace(-1.0, 1.0, width) if width > 1 else torch.zeros(1)
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([yy, xx], dim=-1).reshape(-1, 2)


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


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Split a ``(B, C, H, W)`` map into row-major windows.

    Args:
        x (torch.Tensor): Map whose ``H`` and ``W`` are multiples of
            ``window_size``.
        window_size (int): Window side.

    Returns:
        torch.Tensor: ``(B * nH * nW, window_size**2, C)`` tokens, windows
        ordered ``(b, row, col)`` and tokens row-major inside a window.
    """
    b, c, h, w = x.shape
    x = x.view(b, c, h // window_size, window_size, w // window_size, window_size)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(-1, window_size * window_size, c)


def window_reverse(windows: torch.Tensor, window_size: int, height: int,
                   width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`.

    Args:
        windows (torch.Tensor): ``(B * nH * nW, window_size**2, C)`` tokens.
        window_size (int): Window side.
        height (int): Map height (multiple of ``window_size``).
        width (int): Map width (multiple of ``window_size``).

    Returns:
        torch.Tensor: ``(B, C, height, width)`` map.
    """
    nh, nw = height // window_size, width // window_size
    c = windows.shape[-1]
    x = windows.view(-1, nh, nw, window_size, window_size, c)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(-1, c, height, width)


# --------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of a ``(B, C, H, W)`` map.

    Args:
        num_channels (int): ``C``.
        eps (float): Numerical epsilon. Defaults to 1e-5.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (B, C, H, W) per pixel over C."""
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


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
    """LayerNorm2d then conv3x3 stride 2 (no bias), ``dim -> out_dim``.

    Args:
        dim (int): Input channels.
        out_dim (int): Output channels (2 * dim in FasterViT).
    """

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = LayerNorm2d(dim)
        self.reduction = nn.Conv2d(dim, out_dim, 3, stride=2, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halve the resolution of a ``(B, dim, H, W)`` map (ceil)."""
        return self.reduction(self.norm(x))


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


class PositionMLP(nn.Module):
    """Learned absolute 2-D position term: MLP 2 -> hidden -> dim (ReLU).

    The second linear layer has no bias (this reproduces the reference
    parameter count of 25,320,704).

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


# --------------------------------------------------------------------------
# the backbone
# --------------------------------------------------------------------------
@SEG_MODELS.register_module()
@PRETRAIN_MODELS.register_module()
class FasterViT(BaseModule):
    """FasterViT backbone (arch '0') for mmseg and mmpretrain.

    ``out_indices`` select from five maps: 0 = stage-1 output (``dim``
    channels, /4); 1, 2, 3 = outputs of levels 1-3 including their trailing
    downsample (F1 128@/8, F2 256@/16, F3 512@/32 for arch '0'); 4 = stage-4
    output without the final norm (F4 512@/32). The final LayerNorm2d is only
    used by :meth:`forward_ssl`.

    Args:
        arch (str): Architecture name; only ``'0'``.
        in_channels (int): Image channels. Defaults to 2.
        out_indices (Sequence[int]): Maps to return, see above. Defaults to
            ``(1, 2, 3, 4)``.
        window_size (int): Window side of stages 3-4. Defaults to 7.
        drop_path_rate (float): Stochastic depth, linear over the 16 blocks
            from 0 to this value. Defaults to 0.2.
        hat (bool | Sequence[bool]): Hierarchical attention with carrier
            tokens. ``True`` enables it in stages 3-4; a sequence of 4 bools
            chooses per stage (only the transformer stages 3-4 can have it;
            the paper's FasterViT-0 uses ``(False, False, True, False)``).
            Defaults to False.
        ct_size (int): Carrier tokens per window side (HAT). Defaults to 2.
        hat_input_size (int | Tuple[int, int], optional): With ``hat``, the
            only accepted input size (to reproduce a fixed-resolution setup);
            None accepts any size. Defaults to None.
        frozen_stages (int): -1 freezes nothing; 0 the stem and mask token;
            k >= 1 additionally levels 1..k (blocks and trailing downsample);
            5 also the final norm. Defaults to -1.
        init_cfg (dict | List[dict], optional): mmengine init config;
            ``dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')``
            loads through :func:`load_backbone_weights`.
    """

    arch_zoo: Dict[str, dict] = {
        '0': dict(dim=64, in_dim=64, depths=(2, 3, 6, 5), num_heads=(2, 4, 8, 16),
                  mlp_ratio=4.0),
    }
    min_input_size = 32

    def __init__(self,
                 arch: str = '0',
                 in_channels: int = 2,
                 out_indices: Sequence[int] = (1, 2, 3, 4),
                 window_size: int = 7,
                 drop_path_rate: float = 0.2,
                 hat: Union[bool, Sequence[bool]] = False,
                 ct_size: int = 2,
                 hat_input_size: Optional[Union[int, Tuple[int, int]]] = None,
                 frozen_stages: int = -1,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = str(arch)
        if arch not in self.arch_zoo:
            raise ValueError(f'FasterViT: unknown arch {arch!r}; valid: {sorted(self.arch_zoo)}')
        cfg = self.arch_zoo[arch]
        if in_channels < 1:
            raise ValueError(f'FasterViT: in_channels must be >= 1, got {in_channels}')
        if window_size < 2:
            raise ValueError(f'FasterViT: window_size must be >= 2, got {window_size}')
        depths = cfg['depths']
        if isinstance(hat, bool):
            hat_stages = tuple(hat and i >= 2 for i in range(len(depths)))
        else:
            hat_stages = tuple(bool(h) for h in hat)
            if len(hat_stages) != len(depths) or any(hat_stages[:2]):
                raise ValueError(f'FasterViT: hat must be a bool or {len(depths)} bools with '
                                 f'the conv stages 1-2 False, got {hat!r}')
        hat = any(hat_stages)
        if hat and not 1 <= ct_size <= window_size:
            raise ValueError(f'FasterViT: ct_size must be in 1..window_size={window_size}, '
                             f'got {ct_size}')
        if hat_input_size is not None and not hat:
            raise ValueError('FasterViT: hat_input_size is only meaningful with hat=True')
        if isinstance(hat_input_size, int):
            hat_input_size = (hat_input_size, hat_input_size)
        self.hat_input_size = tuple(hat_input_size) if hat_input_size is not None else None
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f'FasterViT: drop_path_rate must be in [0, 1), got {drop_path_rate}')

        self.arch = arch
        self.in_channels = in_channels
        self.window_size = window_size
        self.hat = hat_stages
        self.ct_size = ct_size
        self.depths = tuple(depths)
        self.num_blocks = sum(depths)
        self.block_offsets = tuple(sum(depths[:i]) for i in range(len(depths)))
        dim = cfg['dim']
        dims = [dim * 2**i for i in range(len(depths))]
        self.num_features = dims[-1]
        # channels of the five selectable maps
        self.out_channels_all = (dims[0], dims[1], dims[2], dims[3], dims[3])
        out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        for i in out_indices:
            if not 0 <= i <= 4:
                raise ValueError(f'FasterViT: out_indices must be in 0..4 (0 = stage-1 map /4, '
                                 f'1..4 = F1..F4), got {tuple(out_indices)}')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages

        self.stem = Stem(in_channels, cfg['in_dim'], dim)
        self.mask_token = nn.Parameter(torch.zeros(1, dim, 1, 1))
        dpr = torch.linspace(0, drop_path_rate, self.num_blocks).tolist()
        self.levels = nn.ModuleList()
        for i, depth in enumerate(depths):
            off = self.block_offsets[i]
            self.levels.append(
                FasterViTLevel(dims[i], depth, cfg['num_heads'][i], window_size, conv=i < 2,
                               downsample=i < len(depths) - 1, mlp_ratio=cfg['mlp_ratio'],
                               drop_path=dpr[off:off + depth], hat=hat_stages[i],
                               ct_size=ct_size))
        self.norm = LayerNorm2d(self.num_features)
        self._init_default_weights()
        self._freeze_stages()

    # ------------------------------------------------------------------ init
    def _init_default_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.mask_token)

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (``Pretrained`` through :func:`load_backbone_weights`)."""
        init_backbone_weights(self, self.init_cfg)
        self._is_init = True

    # ---------------------------------------------------------------- freeze
    def _frozen_modules(self) -> List[nn.Module]:
        mods: List[nn.Module] = []
        if self.frozen_stages >= 0:
            mods.append(self.stem)
        for i in range(min(self.frozen_stages, len(self.levels))):
            mods.append(self.levels[i])
        if self.frozen_stages > len(self.levels):
            mods.append(self.norm)
        return mods

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            self.mask_token.requires_grad_(False)
        for m in self._frozen_modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> 'FasterViT':
        """Set train mode, keeping frozen stages in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    # ---------------------------------------------------------------- checks
    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f'FasterViT: expected a (B, C, H, W) input, got shape '
                             f'{tuple(x.shape)}')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'FasterViT: expected {self.in_channels} input channels, got '
                             f'{x.shape[1]} (input shape {tuple(x.shape)})')
        h, w = x.shape[-2:]
        if min(h, w) < self.min_input_size:
            raise ValueError(f'FasterViT: input {h}x{w} is too small; both sides must be '
                             f'>= {self.min_input_size} (the /32 output stride)')
        if self.hat_input_size is not None and (h, w) != self.hat_input_size:
            raise ValueError(f'FasterViT: built with hat_input_size={self.hat_input_size}, '
                             f'got an input of {h}x{w}')

    @staticmethod
    def mask_grid_size(height: int, width: int) -> Tuple[int, int]:
        """The /32 grid (``ceil(H/32), ceil(W/32)``) on which masks live."""
        return -(-height // 32), -(-width // 32)

    def _apply_mask(self, x: torch.Tensor, mask: torch.Tensor,
                    in_hw: Tuple[int, int]) -> torch.Tensor:
        grid = self.mask_grid_size(*in_hw)
        if mask.dim() == 2 and mask.shape[1] == grid[0] * grid[1]:
            mask = mask.reshape(mask.shape[0], *grid)
        if mask.dim() != 3 or tuple(mask.shape) != (x.shape[0], *grid):
            raise ValueError(f'FasterViT: mask must have shape (B, H/32, W/32) = '
                             f'{(x.shape[0], *grid)} for a {in_hw[0]}x{in_hw[1]} input, got '
                             f'{tuple(mask.shape)}')
        m = mask.to(device=x.device, dtype=torch.bool)
        m = m.repeat_interleave(8, dim=1).repeat_interleave(8, dim=2)
        m = m[:, :x.shape[2], :x.shape[3]].unsqueeze(1)
        return torch.where(m, self.mask_token.to(x.dtype), x)

    # --------------------------------------------------------------- forward
    def _forward_all(self, x: torch.Tensor,
                     mask: Optional[torch.Tensor]) -> List[torch.Tensor]:
        self._check_input(x)
        in_hw = (x.shape[2], x.shape[3])
        x = self.stem(x)
        if mask is not None:
            x = self._apply_mask(x, mask, in_hw)
        outs: List[torch.Tensor] = []
        for i, level in enumerate(self.levels):
            stage_out, x = level(x)
            if i == 0:
                outs.append(stage_out)
            outs.append(x)
        return outs  # [stage1 /4, F1, F2, F3, F4]

    def forward(self, x: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        """Multi-scale features.

        Args:
            x (torch.Tensor): ``(B, in_channels, H, W)`` images, H, W >= 32.
            mask (torch.Tensor, optional): Bool ``(B, ceil(H/32), ceil(W/32))``
                (or flattened ``(B, N)``); True units of the stem output (8x8
                cells of the /4 map) are replaced by the mask token.

        Returns:
            Tuple[torch.Tensor, ...]: The maps selected by ``out_indices``.
        """
        outs = self._forward_all(x, mask)
        return tuple(outs[i] for i in self.out_indices)

    def forward_ssl(self, x: torch.Tensor,
                    mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Final-normed tokens for self-supervised heads.

        Args:
            x (torch.Tensor): ``(B, in_channels, H, W)`` images.
            mask (torch.Tensor, optional): As in :meth:`forward`.

        Returns:
            Dict[str, torch.Tensor]: ``x_norm_patchtokens`` ``(B, N, 512)``
            (final-normed /32 map, row-major) and ``x_norm_clstoken``
            ``(B, 512)``, their mean.
        """
        feat = self.norm(self._forward_all(x, mask)[-1])
        tokens = feat.flatten(2).transpose(1, 2)
        return dict(x_norm_patchtokens=tokens, x_norm_clstoken=tokens.mean(dim=1))

    # ----------------------------------------------------------- optimiser
    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer id for layer-wise learning-rate decay (mmpretrain convention).

        ``num_layers = 16 + 2``: stem and mask token 0; block ``i`` (global
        index over the 16 blocks) ``i + 1``; the downsample of level ``k`` and
        HAT carrier-token initialisers take the id of the first block of the
        stage they feed; final norm and names outside ``prefix``
        ``num_layers - 1``.

        Args:
            param_name (str): Parameter name.
            prefix (str): Prefix of this backbone's names. Defaults to ''.

        Returns:
            Tuple[int, int]: ``(layer_depth, num_layers)``.
        """
        num_layers = self.num_blocks + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        parts = name.split('.')
        if parts[0] in ('stem', 'mask_token'):
            return 0, num_layers
        if parts[0] == 'levels' and len(parts) > 2:
            level = int(parts[1])
            if parts[2] == 'blocks':
                return self.block_offsets[level] + int(parts[3]) + 1, num_layers
            if parts[2] == 'downsample':
                return self.block_offsets[level + 1] + 1, num_layers
            if parts[2] == 'ct_init':
                return self.block_offsets[level] + 1, num_layers
        return num_layers - 1, num_layers

    def no_weight_decay_keys(self) -> Tuple[str, ...]:
        """Name substrings of tables and tokens to exempt from weight decay.

        For ``paramwise_cfg.custom_keys`` (substring match): the mask token,
        the positional MLPs (``pos_mlp``) and the relative-bias MLPs
        (``cpb_mlp``).
        """
        return ('mask_token', 'pos_mlp', 'cpb_mlp')
