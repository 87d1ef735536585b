"""The decoder of MAE with learnable mask tokens (AOI-SSL spec §4.2, §4.4).

The encoder of the mask-token MAE sees every position (masked ones hold the
backbone's mask token), so its output is complete and in row-major spatial
order. This decoder keeps that order: it projects all tokens, puts its own
learnable mask token at the masked positions, adds a fixed 2-D sin-cos table
computed for the actual token grid (so any crop size works), runs two pre-norm
transformer blocks and predicts the ``p * p * C`` pixels of every unit. There
is no ``ids_restore`` un-shuffling (the reference's defect, spec §4.4) and no
CLS slot (the decoder sequence holds the ``L`` units only; the spec's leading
all-zero "cls" row of the table has nothing to act on). Written from the MAE
paper and the AOI-SSL spec; the attention and MLP layers come from
:mod:`aoissl_mm.models.utils`.
"""
from typing import List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import nn

from ..utils import Attention, Mlp

__all__ = ['MaskTokenMAEDecoder', 'sincos_pos_table_2d']


def sincos_pos_table_2d(grid: Tuple[int, int], dim: int,
                        temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sin-cos position table of a ``(rows, cols)`` token grid.

    Token ``k = r * cols + c`` (row-major) gets ``[e(c), e(r)]``: the first
    half of the channels encodes the column, the second half the row (the
    MAE convention). With ``q = dim / 4`` and ``w_i = 1 / temperature**(i/q)``
    (``i = 0..q-1``, i.e. ``1/10000^(2i/d)`` for the per-axis width
    ``d = dim / 2``), ``e(x) = [sin(x w_0..w_{q-1}), cos(x w_0..w_{q-1})]``.

    Unlike mmpretrain's ``build_2d_sincos_position_embedding`` (whose
    ``ij`` meshgrid flattens column-major), the layout here is row-major for
    any grid, square or not.

    Args:
        grid (Tuple[int, int]): ``(rows, cols)``, both >= 1.
        dim (int): Table width, a multiple of 4.
        temperature (float): Frequency base. Defaults to 10000.

    Returns:
        torch.Tensor: ``(rows * cols, dim)`` float32 table.

    Raises:
        ValueError: ``dim`` is not a positive multiple of 4, or a grid side
            is < 1.
    """
    if dim <= 0 or dim % 4:
        raise ValueError(f'sincos_pos_table_2d: dim must be a positive multiple of 4, got {dim}')
    rows, cols = int(grid[0]), int(grid[1])
    if rows < 1 or cols < 1:
        raise ValueError(f'sincos_pos_table_2d: grid sides must be >= 1, got {tuple(grid)}')
    quarter = dim // 4
    omega = 1.0 / temperature**(torch.arange(quarter, dtype=torch.float64) / quarter)
    r = torch.arange(rows, dtype=torch.float64).repeat_interleave(cols)
    c = torch.arange(cols, dtype=torch.float64).repeat(rows)
    out_c, out_r = c[:, None] * omega[None], r[:, None] * omega[None]
    table = torch.cat([out_c.sin(), out_c.cos(), out_r.sin(), out_r.cos()], dim=1)
    return table.float()


class MAEDecoderBlock(nn.Module):
    """Pre-norm transformer block of the decoder (LayerNorm eps 1e-5, qkv bias).

    Args:
        dim (int): Token width.
        num_heads (int): Attention heads.
        mlp_ratio (float): MLP hidden width / dim.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, num_heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to ``(B, N, dim)`` tokens."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@MODELS.register_module()
class MaskTokenMAEDecoder(BaseModule):
    """Decoder (neck) of :class:`~aoissl_mm.models.selfsup.MaskTokenMAE`.

    ``tokens (B, L, in_channels)`` in row-major order of the mask grid ->
    ``decoder_embed`` (linear to ``embed_dims``) -> the learnable decoder
    ``mask_token`` at masked positions (unless ``keep_encoder_tokens_at_mask``)
    -> + fixed sin-cos table of the grid -> ``depth`` blocks ->
    ``decoder_norm`` -> ``decoder_pred`` (linear to ``patch_size**2 *
    out_channels``). Output unit ``t`` predicts the pixels of grid unit ``t``
    in ``(p, p, C)`` order, the layout of mmpretrain's
    ``MAEPretrainHead.patchify``.

    Args:
        in_channels (int): Encoder width (AOIViT 384, FasterViT-0 512).
            Defaults to 384.
        embed_dims (int): Decoder width. Defaults to 384.
        depth (int): Transformer blocks. Defaults to 2.
        num_heads (int): Attention heads. Defaults to 6.
        mlp_ratio (float): MLP ratio. Defaults to 4.
        patch_size (int): Side ``p`` of a mask unit in pixels (ViT 16,
            FasterViT 32). Defaults to 16.
        out_channels (int): Image channels ``C``. Defaults to 2.
        keep_encoder_tokens_at_mask (bool): Keep the projected encoder
            tokens at masked positions (SimMIM-like) instead of the decoder
            mask token. Defaults to False.
        init_cfg (dict | List[dict], optional): mmengine init config; None
            uses the spec's initialisation (:meth:`init_weights`).
    """

    def __init__(self,
                 in_channels: int = 384,
                 embed_dims: int = 384,
                 depth: int = 2,
                 num_heads: int = 6,
                 mlp_ratio: float = 4.0,
                 patch_size: int = 16,
                 out_channels: int = 2,
                 keep_encoder_tokens_at_mask: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels), ('embed_dims', embed_dims),
                            ('num_heads', num_heads), ('patch_size', patch_size),
                            ('out_channels', out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'MaskTokenMAEDecoder: {name} must be an int >= 1, got '
                                 f'{value!r}')
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f'MaskTokenMAEDecoder: depth must be an int >= 0, got {depth!r}')
        if embed_dims % 4:
            raise ValueError(f'MaskTokenMAEDecoder: embed_dims must be a multiple of 4 (2-D '
                             f'sin-cos table), got {embed_dims}')
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.patch_size = patch_size
        self.out_channels = out_channels
        self.keep_encoder_tokens_at_mask = bool(keep_encoder_tokens_at_mask)
        self.decoder_embed = nn.Linear(in_channels, embed_dims)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.decoder_blocks = nn.ModuleList(
            MAEDecoderBlock(embed_dims, num_heads, mlp_ratio) for _ in range(depth))
        self.decoder_norm = nn.LayerNorm(embed_dims, eps=1e-5)
        self.decoder_pred = nn.Linear(embed_dims, patch_size**2 * out_channels)
        self._init_default_weights()

    def _init_default_weights(self) -> None:
        """Spec §4.2: xavier-uniform Linear, zero bias, LayerNorm (1, 0), mask token N(0, .02)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def init_weights(self) -> None:
        """Apply ``init_cfg`` if given, else the spec's initialisation."""
        if self.init_cfg is not None:
            super().init_weights()
            return
        self._init_default_weights()
        self._is_init = True

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predict the pixels of every unit.

        Args:
            tokens (torch.Tensor): ``(B, L, in_channels)`` encoder tokens,
                row-major over the ``(h, w)`` mask grid.
            mask (torch.Tensor): Bool ``(B, h, w)``; True = masked unit.

        Returns:
            torch.Tensor: ``(B, L, patch_size**2 * out_channels)``.

        Raises:
            ValueError: Shapes disagree (named in the message).
        """
        if tokens.dim() != 3 or tokens.shape[-1] != self.in_channels:
            raise ValueError(f'MaskTokenMAEDecoder: tokens must be (B, L, {self.in_channels}), '
                             f'got {tuple(tokens.shape)}')
        b, n, _ = tokens.shape
        if mask.dim() != 3 or mask.shape[0] != b or mask.shape[1] * mask.shape[2] != n:
            raise ValueError(f'MaskTokenMAEDecoder: mask must be (B, h, w) with B = {b} and '
                             f'h * w = {n} tokens, got {tuple(mask.shape)}')
        x = self.decoder_embed(tokens)
        if not self.keep_encoder_tokens_at_mask:
            m = mask.reshape(b, n, 1).to(device=x.device, dtype=torch.bool)
            x = torch.where(m, self.mask_token.to(x.dtype), x)
        pos = sincos_pos_table_2d(tuple(mask.shape[1:]), self.embed_dims)
        x = x + pos.to(device=x.device, dtype=x.dtype).unsqueeze(0)
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))
