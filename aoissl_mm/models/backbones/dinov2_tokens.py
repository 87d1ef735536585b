"""DINOv2 ViT-S/14 (mmpretrain's ``VisionTransformer``) on 2-channel AOI images, for retrieval."""
from typing import Dict, Optional

import torch
from mmpretrain.models.backbones import VisionTransformer
from mmseg.registry import MODELS as SEG_MODELS


@SEG_MODELS.register_module()
class DINOv2Tokens(VisionTransformer):
    """mmpretrain's DINOv2 ``VisionTransformer`` with the retrieval interface.

    The frozen DINOv2 baseline of AOI-SSL (spec §8.6): a 3-channel
    ImageNet model fed with the two AOI channels plus, as third channel,
    their mean. :meth:`forward_ssl` returns the final-normed tokens like the
    package's own backbones, so ``RetrievalSegmentor`` treats it the same.
    The weights come from a file the user gives (mmpretrain's converted
    ``vit-small-p14_dinov2-pre`` checkpoint stores them under
    ``backbone.``): ``tools/test.py CONFIG dinov2.pth`` or
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    Nothing is downloaded.

    Args:
        arch (str): A DINOv2 arch of mmpretrain. Defaults to
            ``'dinov2-small'`` (384-d, 12 layers, 6 heads).
        img_size (int): Size of the position table (interpolated to the
            input). Defaults to 518, DINOv2's.
        patch_size (int): Defaults to 14.
        in_channels (int): Channels of the model's patch embedding. Defaults
            to 3 (the ImageNet weights).
        layer_scale_init_value (float): Defaults to 1e-5 (DINOv2's).
        init_cfg (dict, optional): Initialisation config.
        **kwargs: Other ``VisionTransformer`` arguments.
    """

    def __init__(self,
                 arch: str = 'dinov2-small',
                 img_size: int = 518,
                 patch_size: int = 14,
                 in_channels: int = 3,
                 layer_scale_init_value: float = 1e-5,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        kwargs.setdefault('out_type', 'raw')
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size,
                         in_channels=in_channels, layer_scale_init_value=layer_scale_init_value,
                         init_cfg=init_cfg, **kwargs)
        self.patch_size = patch_size
        self.model_channels = in_channels

    def to_model_channels(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) AOI images → (B, 3, H, W): the two channels and their mean.

        Args:
            x (torch.Tensor): Images with 2 channels (or already with the
                model's channel count, passed through).

        Returns:
            torch.Tensor: ``(B, in_channels, H, W)``.

        Raises:
            ValueError: Neither 2 channels nor the model's.
        """
        if x.shape[1] == self.model_channels:
            return x
        if x.shape[1] == 2 and self.model_channels == 3:
            return torch.cat([x, x.mean(dim=1, keepdim=True)], dim=1)
        raise ValueError(f'DINOv2Tokens: expected 2 (AOI) or {self.model_channels} input '
                         f'channels, got {x.shape[1]}')

    def forward_ssl(self, x: torch.Tensor,
                    mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Final-normed CLS and patch tokens of 2-channel images.

        Args:
            x (torch.Tensor): ``(B, 2, H, W)``, H and W multiples of 14.
            mask (torch.Tensor, optional): Not supported (must be None).

        Returns:
            Dict[str, torch.Tensor]: ``x_norm_clstoken`` ``(B, D)`` and
            ``x_norm_patchtokens`` ``(B, N, D)`` (row-major).
        """
        if mask is not None:
            raise ValueError('DINOv2Tokens.forward_ssl takes no mask (a frozen baseline)')
        if self.out_type != 'raw' or not self.with_cls_token:
            raise ValueError("DINOv2Tokens needs out_type='raw' and with_cls_token=True")
        (tokens, ) = super().forward(self.to_model_channels(x))
        return dict(x_norm_clstoken=tokens[:, 0], x_norm_patchtokens=tokens[:, 1:])
