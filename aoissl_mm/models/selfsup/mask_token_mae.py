"""MAE with learnable mask tokens: the AOI-SSL adaptation of MAE (spec §4).

mmpretrain's ``MAE`` needs a token-dropping encoder that returns
``(latent, mask, ids_restore)``; the hierarchical FasterViT cannot drop
tokens. Here the encoder sees every position and masked units are replaced by
the backbone's own mask token (``backbone.forward_ssl(x, mask)``, as in
SimMIM/iBOT); the decoder (:class:`~aoissl_mm.models.necks.MaskTokenMAEDecoder`)
keeps spatial order and puts its learnable mask token at masked positions; the
loss is mmpretrain's ``MAEPretrainHead`` + ``PixelReconstructionLoss`` (MSE on
masked units only). Unlike SimMIM, whose mask comes from the data pipeline,
the uniform random mask is drawn here, on the backbone's mask grid, for
whatever crop arrives.
"""
import math
import numbers
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

from ..backbones import FasterViT

__all__ = ['MaskTokenMAE']

# FasterViT masks 8x8 cells of its /4 stem output: units of 32 px, its final stride
_FASTERVIT_MASK_UNIT = 32


def _mask_unit(backbone: nn.Module) -> int:
    """Side in pixels of one unit of the backbone's mask grid."""
    if isinstance(backbone, FasterViT):
        return _FASTERVIT_MASK_UNIT
    patch = getattr(backbone, 'patch_size', None)
    if isinstance(patch, int) and not isinstance(patch, bool) and hasattr(backbone,
                                                                         'forward_ssl'):
        return patch
    raise TypeError(f'MaskTokenMAE: backbone {type(backbone).__name__} has no known mask grid; '
                    f'use AOIViT (patch grid) or FasterViT (32-px grid), or a backbone with '
                    f'an int `patch_size` and `forward_ssl(x, mask)`')


def _width(backbone: nn.Module) -> Optional[int]:
    """Channel width of ``forward_ssl`` tokens, when the backbone says."""
    for attr in ('num_features', 'embed_dims'):
        value = getattr(backbone, attr, None)
        if isinstance(value, int):
            return value
    return None


@MODELS.register_module()
class MaskTokenMAE(BaseSelfSupervisor):
    """MAE whose encoder keeps masked units as mask tokens (AOI-SSL, spec §4).

    Per sample, ``round_down(L * (1 - mask_ratio))`` units of the ``L``-unit
    mask grid (16 px for AOIViT, 32 px for FasterViT) are kept, chosen
    uniformly at random, and the other ``L - kept`` (``ceil(L * mask_ratio)``
    up to rounding of the float product) are masked. The encoder
    (``backbone.forward_ssl(inputs, mask)``) replaces masked units by its mask
    token; the neck decodes the ``x_norm_patchtokens`` in spatial order; the
    head (``MAEPretrainHead``: ``patch_size`` = the mask unit, ``in_channels``
    = image channels) computes the loss on masked units only. The encoder is
    stored under ``backbone.``, so fine-tuning configs load it with
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.

    Args:
        backbone (dict): Encoder with ``forward_ssl(x, mask)`` (``AOIViT``,
            ``FasterViT``).
        neck (dict): Decoder (``MaskTokenMAEDecoder``).
        head (dict): Loss head (``MAEPretrainHead`` with
            ``PixelReconstructionLoss``).
        mask_ratio (float): Share of masked units, in (0, 1). Defaults to
            0.75 (spec §4.1 REC; the paper's ablation used 0.2-0.95).
        target_generator (dict, optional): Unused; kept for mmpretrain's API.
        pretrained (str, optional): Whole-model checkpoint (mmpretrain API).
        data_preprocessor (dict | nn.Module, optional): E.g.
            ``dict(type='AOISelfSupDataPreprocessor')``.
        init_cfg (dict, optional): mmengine init config.

    Raises:
        ValueError: ``mask_ratio`` outside (0, 1), or the neck/head do not
            fit the backbone (mask unit, channels, width).
        TypeError: A backbone without a known mask grid.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 mask_ratio: float = 0.75,
                 target_generator: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, numbers.Real) \
                or not 0.0 < float(mask_ratio) < 1.0:
            raise ValueError(f'MaskTokenMAE: mask_ratio must be a number in (0, 1) (the share '
                             f'of masked units), got {mask_ratio!r}')
        super().__init__(backbone=backbone, neck=neck, head=head,
                         target_generator=target_generator, pretrained=pretrained,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.mask_ratio = float(mask_ratio)
        self.mask_unit = _mask_unit(self.backbone)
        self._check_parts()

    def _check_parts(self) -> None:
        """The neck and head must match the backbone's mask unit, width and channels."""
        unit, name = self.mask_unit, type(self.backbone).__name__
        channels = getattr(self.backbone, 'in_channels', None)
        checks = [
            ('head.patch_size', getattr(self.head, 'patch_size', None), unit),
            ('neck.patch_size', getattr(self.neck, 'patch_size', None), unit),
            ('head.in_channels', getattr(self.head, 'in_channels', None), channels),
            ('neck.out_channels', getattr(self.neck, 'out_channels', None), channels),
            ('neck.in_channels', getattr(self.neck, 'in_channels', None), _width(self.backbone)),
        ]
        for key, found, expected in checks:
            if found is not None and expected is not None and found != expected:
                raise ValueError(f'MaskTokenMAE: {key} = {found} does not fit the {name} '
                                 f'backbone (expected {expected}; mask unit {unit} px, '
                                 f'{channels} image channels, width {_width(self.backbone)})')

    # ------------------------------------------------------------- masking
    def num_masked(self, num_units: int) -> int:
        """Masked units of an ``num_units``-unit grid: ``L - round_down(L * (1 - r))``."""
        kept = int(math.floor(num_units * (1.0 - self.mask_ratio)))
        return min(max(num_units - kept, 1), num_units)

    def generate_mask(self, batch_size: int, grid: Tuple[int, int],
                      device: Optional[torch.device] = None) -> torch.Tensor:
        """Uniform random per-sample masks on the mask grid.

        Args:
            batch_size (int): Samples.
            grid (Tuple[int, int]): ``(h, w)`` mask grid.
            device (torch.device, optional): Device of the mask.

        Returns:
            torch.Tensor: Bool ``(B, h, w)``, True = masked; every sample has
            :meth:`num_masked` True entries.
        """
        num_units = grid[0] * grid[1]
        masked = self.num_masked(num_units)
        noise = torch.rand(batch_size, num_units, device=device)
        ids = noise.argsort(dim=1)
        mask = torch.zeros(batch_size, num_units, dtype=torch.bool, device=device)
        mask.scatter_(1, ids[:, num_units - masked:], True)  # the highest-noise units
        return mask.view(batch_size, *grid)

    # --------------------------------------------------------------- input
    def _single_input(self, inputs: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 1:
                raise ValueError(f'MaskTokenMAE: expected one view per sample, got '
                                 f'{len(inputs)} (use a single-crop pipeline)')
            inputs = inputs[0]
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
            shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs)
            raise ValueError(f'MaskTokenMAE: expected a (B, C, H, W) image batch, got {shape}')
        return inputs

    def mask_grid(self, height: int, width: int) -> Tuple[int, int]:
        """The ``(h, w)`` mask grid of an input, with clear errors for bad sizes.

        Raises:
            ValueError: A side smaller than the mask unit, a side not
                divisible by it, or a non-square input (the reconstruction
                targets come from mmpretrain's square-only ``patchify``).
        """
        unit, name = self.mask_unit, type(self.backbone).__name__
        if height < unit or width < unit:
            raise ValueError(f'MaskTokenMAE: input crop {height}x{width} is smaller than one '
                             f'{unit}-px unit of the {name} mask grid; use crops of at least '
                             f'{unit} px (a multiple of {unit})')
        if height % unit or width % unit:
            raise ValueError(f'MaskTokenMAE: input {height}x{width} is not divisible by the '
                             f'{unit}-px mask grid of {name}; use crop sizes that are '
                             f'multiples of {unit}')
        if height != width:
            raise ValueError(f'MaskTokenMAE: input {height}x{width} is not square; the '
                             f'MAEPretrainHead targets (mmpretrain patchify) need square crops')
        return height // unit, width // unit

    # ------------------------------------------------------------- forward
    def extract_feat(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The backbone's feature maps of unmasked inputs (``mode='tensor'``)."""
        return self.backbone(inputs)

    def reconstruct(self, inputs: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        """Decoder predictions ``(B, L, p*p*C)`` for given masks ``(B, h, w)``."""
        tokens = self.backbone.forward_ssl(inputs, mask)['x_norm_patchtokens']
        return self.neck(tokens, mask)

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]],
             data_samples: Optional[List[DataSample]] = None,
             **kwargs) -> Dict[str, torch.Tensor]:
        """Mask, encode, decode and compute the loss on the masked units.

        Args:
            inputs (torch.Tensor | List[torch.Tensor]): ``(B, C, H, W)``
                preprocessed images (or a one-element list of them).
            data_samples (List[DataSample], optional): Unused.

        Returns:
            Dict[str, torch.Tensor]: ``dict(loss=...)``.
        """
        x = self._single_input(inputs)
        grid = self.mask_grid(x.shape[2], x.shape[3])
        mask = self.generate_mask(x.shape[0], grid, x.device)
        pred = self.reconstruct(x, mask)
        loss = self.head.loss(pred, x, mask.flatten(1).to(pred.dtype))
        return dict(loss=loss)
