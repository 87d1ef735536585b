"""Max-pooling pyramid pooling module of the AOI-SSL UPerNet decoder (spec §7.1)."""
from typing import List, Optional, Sequence

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.utils import resize
from torch import Tensor


class AOIMaxPPM(nn.ModuleList):
    """Pyramid pooling with adaptive MAX pooling and E/4-channel branches.

    For every scale ``s``: ``AdaptiveMaxPool2d(s)`` -> 1x1 conv
    (``in_channels -> branch_channels``, no bias) -> norm -> activation ->
    bilinear upsample back to the input size. Unlike mmseg's ``PPM``
    (average pooling, ``channels`` outputs per branch, usually a scale-1
    branch), there is no global branch unless ``1`` is listed in
    ``pool_scales``. :meth:`forward` returns the list of upsampled branches
    (the caller concatenates them with the input), the same contract as
    mmseg's ``PPM`` so ``UPerHead.psp_forward`` can use it unchanged.

    Args:
        pool_scales (Sequence[int]): Output sizes of the adaptive max pools.
        in_channels (int): Channels E of the input feature.
        branch_channels (int): Output channels of every branch (E // 4 in
            the reference decoder).
        conv_cfg (dict | None): Config of the conv layers.
        norm_cfg (dict | None): Config of the norm layers.
        act_cfg (dict | None): Config of the activation layers.
        align_corners (bool): ``align_corners`` of the bilinear upsampling.
    """

    def __init__(self,
                 pool_scales: Sequence[int],
                 in_channels: int,
                 branch_channels: int,
                 conv_cfg: Optional[dict],
                 norm_cfg: Optional[dict],
                 act_cfg: Optional[dict],
                 align_corners: bool) -> None:
        super().__init__()
        if len(pool_scales) == 0:
            raise ValueError("'pool_scales' must list at least one scale")
        if branch_channels < 1:
            raise ValueError(f"'branch_channels' must be >= 1, got {branch_channels} "
                             f'(in_channels={in_channels})')
        self.pool_scales = tuple(int(s) for s in pool_scales)
        self.in_channels = in_channels
        self.branch_channels = branch_channels
        self.align_corners = align_corners
        for scale in self.pool_scales:
            self.append(
                nn.Sequential(
                    nn.AdaptiveMaxPool2d(scale),
                    ConvModule(
                        in_channels,
                        branch_channels,
                        1,
                        bias=False,
                        conv_cfg=conv_cfg,
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg)))

    def forward(self, x: Tensor) -> List[Tensor]:
        """Pool, project and upsample every branch.

        Args:
            x (Tensor): Input feature (N, E, H, W).

        Returns:
            list[Tensor]: One (N, branch_channels, H, W) map per scale.
        """
        outs = []
        for branch in self:
            outs.append(
                resize(branch(x), size=x.shape[2:], mode='bilinear',
                       align_corners=self.align_corners))
        return outs
