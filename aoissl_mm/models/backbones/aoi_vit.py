"""ViT-Tiny (DINOv2-style) for 2-channel AOI images, with an encoder mask token.

Follows the AOI-SSL spec §2: 16-px patch embedding without norm, one CLS
token, a learnable absolute position table built for ``img_size`` and resized
bicubically (DINO's "+0.1 offset" scale factor) to other input sizes, a zero-
initialised mask token substituted for masked patch embeddings before the
position table is added, 6 pre-norm blocks (384 wide, 6 heads, MLP ratio 4,
LayerNorm eps 1e-6, no LayerScale) and a final LayerNorm shared by every
returned feature map. Parameter names follow DINOv2 (``patch_embed.proj``,
``blocks.i.attn.qkv``, ``norm``, ...). Written from the ViT, DINO and DINOv2
papers and the AOI-SSL spec; the shared attention, MLP and position-table
resizing come from :mod:`aoissl_mm.models.utils`.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmseg.registry import MODELS as SEG_MODELS
from torch import nn
from torch.nn.init import trunc_normal_

from ..utils import Attention, Mlp, interpolate_pos_table
from .pretrained import init_backbone_weights

__all__ = ['AOIViT', 'PatchEmbed', 'ViTBlock']


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding: Conv2d(k=p, s=p, bias), no norm.

    Args:
        in_channels (int): Image channels.
        embed_dim (int): Token width.
        patch_size (int): Patch side.
    """

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, H, W)`` to ``(B, H/p * W/p, embed_dim)`` tokens (row-major)."""
        return self.proj(x).flatten(2).transpose(1, 2)


class ViTBlock(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6, no LayerScale).

    Args:
        dim (int): Token width.
        num_heads (int): Attention heads.
        mlp_ratio (float): MLP hidden width / dim.
        drop_path (float): Stochastic-depth rate. Defaults to 0.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to ``(B, N, dim)`` tokens."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


@SEG_MODELS.register_module()
@PRETRAIN_MODELS.register_module()
class AOIViT(BaseModule):
    """ViT-Tiny encoder of AOI-SSL for mmseg and mmpretrain.

    :meth:`forward` returns, for every block index in ``out_indices``, that
    block's output passed through the shared final LayerNorm (when
    ``final_norm``), CLS dropped, as a ``(B, 384, H/16, W/16)`` map.

    Args:
        arch (str): ``'tiny'`` (6 blocks, 384 wide, 6 heads, MLP ratio 4).
        in_channels (int): Image channels. Defaults to 2.
        img_size (int | Tuple[int, int]): Size the position table is built
            for. Defaults to 512 (a 32x32 grid).
        patch_size (int): Patch side. Defaults to 16.
        out_indices (Sequence[int]): Blocks whose outputs are returned
            (negative counts from the end). Defaults to ``(2, 3, 4, 5)``.
        final_norm (bool): Pass the returned maps through the final norm.
            Defaults to True.
        drop_path_rate (float): Stochastic depth, linear over the blocks.
            Defaults to 0.
        interpolate_offset (float): DINO scale-factor offset of the position
            table resize; 0 resizes to the exact size. Defaults to 0.1.
        init_cfg (dict | List[dict], optional): mmengine init config;
            ``dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')``
            loads through :func:`load_backbone_weights`.
    """

    arch_zoo: Dict[str, dict] = {
        'tiny': dict(embed_dims=384, num_layers=6, num_heads=6, mlp_ratio=4.0),
    }

    def __init__(self,
                 arch: str = 'tiny',
                 in_channels: int = 2,
                 img_size: Union[int, Tuple[int, int]] = 512,
                 patch_size: int = 16,
                 out_indices: Sequence[int] = (2, 3, 4, 5),
                 final_norm: bool = True,
                 drop_path_rate: float = 0.0,
                 interpolate_offset: float = 0.1,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if arch not in self.arch_zoo:
            raise ValueError(f'AOIViT: unknown arch {arch!r}; valid: {sorted(self.arch_zoo)}')
        cfg = self.arch_zoo[arch]
        if in_channels < 1:
            raise ValueError(f'AOIViT: in_channels must be >= 1, got {in_channels}')
        if patch_size < 1:
            raise ValueError(f'AOIViT: patch_size must be >= 1, got {patch_size}')
        img_hw = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if len(img_hw) != 2 or any(s < patch_size or s % patch_size for s in img_hw):
            raise ValueError(f'AOIViT: img_size {img_size} must be a positive multiple of '
                             f'patch_size {patch_size}')
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f'AOIViT: drop_path_rate must be in [0, 1), got {drop_path_rate}')
        self.arch = arch
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.embed_dims = cfg['embed_dims']
        self.num_layers = cfg['num_layers']
        self.interpolate_offset = interpolate_offset
        self.final_norm = final_norm
        self.pos_grid = (img_hw[0] // patch_size, img_hw[1] // patch_size)
        out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        norm_idx = []
        for i in out_indices:
            j = i + self.num_layers if i < 0 else i
            if not 0 <= j < self.num_layers:
                raise ValueError(f'AOIViT: out_indices must index the {self.num_layers} blocks '
                                 f'(-{self.num_layers}..{self.num_layers - 1}), got '
                                 f'{tuple(out_indices)}')
            norm_idx.append(j)
        self.out_indices = tuple(norm_idx)

        dim = self.embed_dims
        self.patch_embed = PatchEmbed(in_channels, dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        num_patches = self.pos_grid[0] * self.pos_grid[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        dpr = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.blocks = nn.ModuleList(
            ViTBlock(dim, cfg['num_heads'], cfg['mlp_ratio'], dpr[i])
            for i in range(self.num_layers))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self._init_default_weights()

    # ------------------------------------------------------------------ init
    def _init_default_weights(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        nn.init.zeros_(self.mask_token)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (``Pretrained`` through :func:`load_backbone_weights`)."""
        init_backbone_weights(self, self.init_cfg)
        self._is_init = True

    def convert_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Resize a square ``pos_embed`` of another grid to this model's grid.

        Used by :func:`load_backbone_weights` (e.g. an iBOT encoder trained
        with ``img_size=224`` loaded into a 512 model). Other tensors are
        returned unchanged; non-square or CLS-less tables are left for the
        shape check to report.

        Args:
            state_dict (Dict[str, torch.Tensor]): Prefix-stripped tensors.

        Returns:
            Dict[str, torch.Tensor]: The (possibly) adapted tensors.
        """
        pos = state_dict.get('pos_embed')
        if pos is None or pos.dim() != 3 or tuple(pos.shape) == tuple(self.pos_embed.shape):
            return state_dict
        if pos.shape[0] != 1 or pos.shape[2] != self.embed_dims:
            return state_dict
        side = math.isqrt(pos.shape[1] - 1)
        if side * side != pos.shape[1] - 1:
            return state_dict
        out = dict(state_dict)
        patch = interpolate_pos_table(pos[:, 1:], (side, side), self.pos_grid, offset=0.0)
        out['pos_embed'] = torch.cat([pos[:, :1], patch], dim=1)
        return out

    # ---------------------------------------------------------------- checks
    def _check_input(self, x: torch.Tensor) -> Tuple[int, int]:
        if x.dim() != 4:
            raise ValueError(f'AOIViT: expected a (B, C, H, W) input, got shape {tuple(x.shape)}')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'AOIViT: expected {self.in_channels} input channels, got '
                             f'{x.shape[1]} (input shape {tuple(x.shape)})')
        h, w = x.shape[-2:]
        p = self.patch_size
        if h < p or w < p:
            raise ValueError(f'AOIViT: input {h}x{w} is too small; both sides must be >= the '
                             f'patch size {p}')
        if h % p or w % p:
            raise ValueError(f'AOIViT: input size {h}x{w} is not a multiple of the patch size {p}')
        return h // p, w // p

    # --------------------------------------------------------------- forward
    def pos_table(self, grid: Tuple[int, int]) -> torch.Tensor:
        """The ``(1, 1 + gh*gw, C)`` position table for a token grid.

        At the native grid the learned table itself is returned; otherwise
        its patch part is resized (:func:`interpolate_pos_table`) and the
        CLS slot copied.
        """
        if tuple(grid) == self.pos_grid:
            return self.pos_embed
        patch = interpolate_pos_table(self.pos_embed[:, 1:], self.pos_grid, grid,
                                      self.interpolate_offset)
        return torch.cat([self.pos_embed[:, :1], patch], dim=1)

    def prepare_tokens(self, x: torch.Tensor,
                       mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Patch-embed, substitute the mask token, add CLS and positions.

        Args:
            x (torch.Tensor): ``(B, in_channels, H, W)`` images.
            mask (torch.Tensor, optional): Bool ``(B, H/16, W/16)`` or
                ``(B, N)``; True patches become ``mask_token + pos``.

        Returns:
            Tuple[torch.Tensor, Tuple[int, int]]: ``(B, 1 + N, C)`` tokens and
            the patch grid.
        """
        grid = self._check_input(x)
        tokens = self.patch_embed(x)
        b, n, _ = tokens.shape
        if mask is not None:
            if mask.dim() == 3 and tuple(mask.shape) == (b, *grid):
                mask = mask.reshape(b, n)
            if tuple(mask.shape) != (b, n):
                raise ValueError(f'AOIViT: mask must have shape (B, H/16, W/16) = {(b, *grid)} '
                                 f'or (B, N) = {(b, n)}, got {tuple(mask.shape)}')
            tokens = torch.where(mask.to(device=tokens.device, dtype=torch.bool).unsqueeze(-1),
                                 self.mask_token.to(tokens.dtype).unsqueeze(0), tokens)
        tokens = torch.cat([self.cls_token.expand(b, -1, -1).to(tokens.dtype), tokens], dim=1)
        return tokens + self.pos_table(grid).to(tokens.dtype), grid

    def forward(self, x: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        """Feature maps of the ``out_indices`` blocks.

        Args:
            x (torch.Tensor): ``(B, in_channels, H, W)``, H and W multiples of
                the patch size.
            mask (torch.Tensor, optional): Patch mask, see
                :meth:`prepare_tokens`.

        Returns:
            Tuple[torch.Tensor, ...]: ``(B, 384, H/16, W/16)`` maps.
        """
        tokens, (gh, gw) = self.prepare_tokens(x, mask)
        outs = {}
        for i, blk in enumerate(self.blocks):
            tokens = blk(tokens)
            if i in self.out_indices:
                out = self.norm(tokens) if self.final_norm else tokens
                out = out[:, 1:].transpose(1, 2).reshape(out.shape[0], -1, gh, gw)
                outs[i] = out.contiguous()
        return tuple(outs[i] for i in self.out_indices)  # in the order asked for

    def forward_ssl(self, x: torch.Tensor,
                    mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Encoder outputs for self-supervised heads.

        Args:
            x (torch.Tensor): ``(B, in_channels, H, W)`` images.
            mask (torch.Tensor, optional): Patch mask, see
                :meth:`prepare_tokens`.

        Returns:
            Dict[str, torch.Tensor]: ``x_norm_clstoken`` ``(B, 384)``,
            ``x_norm_patchtokens`` ``(B, N, 384)`` and ``x_prenorm``
            ``(B, 1 + N, 384)`` (last block output before the final norm).
        """
        tokens, _ = self.prepare_tokens(x, mask)
        for blk in self.blocks:
            tokens = blk(tokens)
        normed = self.norm(tokens)
        return dict(x_norm_clstoken=normed[:, 0], x_norm_patchtokens=normed[:, 1:],
                    x_prenorm=tokens)

    # ----------------------------------------------------------- optimiser
    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer id for layer-wise learning-rate decay (mmpretrain convention).

        ``num_layers = 6 + 2``: ``patch_embed``, ``cls_token``, ``pos_embed``
        and ``mask_token`` 0; ``blocks.i`` ``i + 1``; the final norm and names
        outside ``prefix`` ``num_layers - 1``.

        Args:
            param_name (str): Parameter name.
            prefix (str): Prefix of this backbone's names. Defaults to ''.

        Returns:
            Tuple[int, int]: ``(layer_depth, num_layers)``.
        """
        num_layers = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        parts = param_name[len(prefix):].split('.')
        if parts[0] in ('patch_embed', 'cls_token', 'pos_embed', 'mask_token'):
            return 0, num_layers
        if parts[0] == 'blocks' and len(parts) > 1:
            return int(parts[1]) + 1, num_layers
        return num_layers - 1, num_layers
