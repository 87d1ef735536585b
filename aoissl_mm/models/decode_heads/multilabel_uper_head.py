"""UPerNet decode head for multi-label (sigmoid, overlapping classes) segmentation."""
from typing import Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads import UPerHead
from mmseg.registry import MODELS
from torch import Tensor

from .aoi_max_ppm import AOIMaxPPM
from .multilabel_head_mixin import MultiLabelHeadMixin

_POOL_TYPES = ('max_aoi', 'mmseg')
_DEFAULT_POOL_SCALES = {'max_aoi': (2, 4, 8, 16), 'mmseg': (1, 2, 3, 6)}


@MODELS.register_module()
class MultiLabelUPerHead(MultiLabelHeadMixin, UPerHead):
    """UPerNet head with sigmoid multi-label outputs (AOI-SSL spec §7.1/§7.2).

    Outputs ``num_classes`` independent logits per pixel (no background
    channel; ``out_channels`` must equal ``num_classes``). The FPN and the
    fusion are mmseg's ``UPerHead``. Differences, selectable by arguments:

    * ``pool_type='max_aoi'`` (AOI-SSL decoder): the PPM uses adaptive MAX
      pooling at ``pool_scales`` (default (2, 4, 8, 16), no global branch),
      branches of ``E // 4`` channels (1x1 conv without bias + norm + act,
      bilinear upsample), then concat(input, branches) -> 3x3
      conv-norm-act -> ``channels``.
      ``pool_type='mmseg'``: mmseg's PPM (average pooling, ``channels`` per
      branch, default scales (1, 2, 3, 6)).
    * ``extra_conv=True`` adds a 3x3 conv-norm-act (channels -> channels)
      between the fused feature and ``conv_seg``.
    * ``dropout_ratio`` defaults to 0.0 (the reference decoder has no
      dropout; mmseg's default is 0.1).
    * ``loss_decode`` defaults to mmseg's sigmoid BCE averaged over the valid
      (not ``ignore_index``) elements of all classes and pixels:
      ``dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True,
      loss_name='loss_bce')``. Softmax ``CrossEntropyLoss`` is rejected.

    :meth:`loss_by_feat` resizes the logits to the label size, applies every
    loss in ``loss_decode`` to (N, C, H, W) logits vs the (N, C, H, W)
    multi-hot ``gt_sem_seg`` (0/1, ``ignore_index`` ignored element-wise),
    summing losses that share a ``loss_name``, and logs ``acc_<class>`` (the
    percentage of valid elements of that class where ``sigmoid >= 0.5``
    equals the target) and ``acc_seg`` (their mean over the classes that
    have valid elements; a class without valid elements logs 0).

    Args:
        pool_type (str): 'max_aoi' or 'mmseg'. Defaults to 'max_aoi'.
        pool_scales (Sequence[int] | None): PPM output sizes; None selects
            the default of ``pool_type``. Defaults to None.
        extra_conv (bool): Add the 3x3 conv before the classifier.
            Defaults to True.
        class_names (Sequence[str] | None): Names used in the accuracy log
            keys; None gives 'c0', 'c1', .... Defaults to None.
        **kwargs: ``UPerHead`` / ``BaseDecodeHead`` arguments (``in_channels``,
            ``in_index``, ``channels``, ``num_classes``, ``norm_cfg``,
            ``align_corners``, ``loss_decode``, ``ignore_index``, ...).
            ``sampler`` (single-label pixel samplers) is not supported.
    """

    def __init__(self,
                 pool_type: str = 'max_aoi',
                 pool_scales: Optional[Sequence[int]] = None,
                 extra_conv: bool = True,
                 class_names: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        if pool_type not in _POOL_TYPES:
            raise ValueError(f"'pool_type' must be one of {_POOL_TYPES}, got {pool_type!r}")
        if pool_scales is None:
            pool_scales = _DEFAULT_POOL_SCALES[pool_type]
        if (not isinstance(pool_scales, (list, tuple)) or len(pool_scales) == 0
                or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                           for s in pool_scales)):
            raise ValueError(f"'pool_scales' must be a non-empty sequence of positive ints, "
                             f'got {pool_scales!r}')
        kwargs = self._multilabel_kwargs(class_names, kwargs)
        super().__init__(pool_scales=tuple(pool_scales), **kwargs)
        self.pool_type = pool_type
        self.pool_scales = tuple(pool_scales)
        self._set_class_names(class_names)

        if pool_type == 'max_aoi':
            top_channels = self.in_channels[-1]
            branch_channels = top_channels // 4
            self.psp_modules = AOIMaxPPM(
                self.pool_scales,
                top_channels,
                branch_channels,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg,
                align_corners=self.align_corners)
            self.bottleneck = ConvModule(
                top_channels + len(self.pool_scales) * branch_channels,
                self.channels,
                3,
                padding=1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg)

        self.pre_cls_conv: Optional[nn.Module] = None
        if extra_conv:
            self.pre_cls_conv = ConvModule(
                self.channels,
                self.channels,
                3,
                padding=1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg)

    def forward(self, inputs: Tuple[Tensor, ...]) -> Tensor:
        """Compute per-class logits.

        Args:
            inputs (tuple[Tensor]): Multi-level features from the backbone.

        Returns:
            Tensor: Logits (N, num_classes, H_0, W_0) at the resolution of the
            finest selected level.
        """
        feats = self._forward_feature(inputs)
        if self.pre_cls_conv is not None:
            feats = self.pre_cls_conv(feats)
        return self.cls_seg(feats)
