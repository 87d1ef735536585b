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

This module holds the backbone; its blocks are in
:mod:`aoissl_mm.models.backbones.fastervit_blocks` and the layers it shares
with other models in :mod:`aoissl_mm.models.utils`.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from mmpretrain.models.utils import LayerNorm2d
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmseg.registry import MODELS as SEG_MODELS
from torch import nn
from torch.nn.init import trunc_normal_

from .fastervit_blocks import FasterViTLevel, Stem
from .pretrained import init_backbone_weights

__all__ = ['FasterViT']


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
    out_stride = 32  # pixels per token of the final map (forward_ssl's tokens)

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
        hat_stages, self.hat_input_size = self._parse_hat(hat, len(depths), ct_size, window_size,
                                                          hat_input_size)
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
        self.out_indices = self._parse_out_indices(out_indices)
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
        self.norm = LayerNorm2d(self.num_features, eps=1e-5)
        self._init_default_weights()
        self._freeze_stages()

    # --------------------------------------------------------------- options
    @staticmethod
    def _parse_hat(hat: Union[bool, Sequence[bool]], num_stages: int, ct_size: int,
                   window_size: int, hat_input_size: Optional[Union[int, Tuple[int, int]]]
                   ) -> Tuple[Tuple[bool, ...], Optional[Tuple[int, int]]]:
        """Validate the HAT options; return per-stage flags and the fixed size."""
        if isinstance(hat, bool):
            hat_stages = tuple(hat and i >= 2 for i in range(num_stages))
        else:
            hat_stages = tuple(bool(h) for h in hat)
            if len(hat_stages) != num_stages or any(hat_stages[:2]):
                raise ValueError(f'FasterViT: hat must be a bool or {num_stages} bools with '
                                 f'the conv stages 1-2 False, got {hat!r}')
        any_hat = any(hat_stages)
        if any_hat and not 1 <= ct_size <= window_size:
            raise ValueError(f'FasterViT: ct_size must be in 1..window_size={window_size}, '
                             f'got {ct_size}')
        if hat_input_size is not None and not any_hat:
            raise ValueError('FasterViT: hat_input_size is only meaningful with hat=True')
        if isinstance(hat_input_size, int):
            hat_input_size = (hat_input_size, hat_input_size)
        return hat_stages, (tuple(hat_input_size) if hat_input_size is not None else None)

    @staticmethod
    def _parse_out_indices(out_indices: Union[int, Sequence[int]]) -> Tuple[int, ...]:
        """Validate ``out_indices`` (0..4, see the class docstring)."""
        out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        for i in out_indices:
            if not 0 <= i <= 4:
                raise ValueError(f'FasterViT: out_indices must be in 0..4 (0 = stage-1 map /4, '
                                 f'1..4 = F1..F4), got {tuple(out_indices)}')
        return tuple(out_indices)

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
