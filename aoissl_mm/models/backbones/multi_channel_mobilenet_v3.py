"""mmseg's MobileNetV3 with a configurable number of input channels."""
from typing import Any

import torch.nn as nn
from mmcv.cnn import build_conv_layer
from mmseg.models.backbones import MobileNetV3
from mmseg.registry import MODELS


@MODELS.register_module()
class MultiChannelMobileNetV3(MobileNetV3):
    """MobileNetV3 (mmseg) whose stem takes ``in_channels`` inputs.

    mmseg's ``MobileNetV3`` hard-codes 3 input channels; AOI images have two
    light buffers. Only the stem convolution (``layer0.conv``) is rebuilt with
    the same kernel, stride, padding mode and bias; everything else is mmseg's.

    Args:
        in_channels (int): Number of input channels. Defaults to 2.
        **kwargs: Arguments of :class:`mmseg.models.backbones.MobileNetV3`.
    """

    def __init__(self, in_channels: int = 2, **kwargs: Any) -> None:
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"'in_channels' must be a positive int, got {in_channels!r}")
        super().__init__(**kwargs)
        old: nn.Conv2d = self.layer0.conv
        self.layer0.conv = build_conv_layer(
            dict(type='Conv2dAdaptivePadding'),
            in_channels,
            old.out_channels,
            kernel_size=old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            bias=old.bias is not None)
        self.in_channels = in_channels
