"""UPerNet decode head for multi-label (sigmoid, overlapping classes) segmentation."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from torch import Tensor

from mmseg.models.decode_heads import UPerHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from .aoi_max_ppm import AOIMaxPPM

_POOL_TYPES = ('max_aoi', 'mmseg')
_DEFAULT_POOL_SCALES = {'max_aoi': (2, 4, 8, 16), 'mmseg': (1, 2, 3, 6)}


def _loss_cfgs(loss_decode: Union[dict, Sequence[dict]]) -> List[dict]:
    """Return ``loss_decode`` as a list of config dicts (for validation)."""
    if isinstance(loss_decode, dict):
        return [loss_decode]
    if isinstance(loss_decode, (list, tuple)):
        return list(loss_decode)
    raise TypeError(f"'loss_decode' must be a dict or a sequence of dicts, got "
                    f'{type(loss_decode).__name__}')


@MODELS.register_module()
class MultiLabelUPerHead(UPerHead):
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
        if 'num_classes' not in kwargs:
            raise ValueError("'num_classes' is required (one sigmoid channel per class)")
        num_classes = kwargs['num_classes']
        out_channels = kwargs.get('out_channels')
        if out_channels is not None and out_channels != num_classes:
            raise ValueError(f"'out_channels' must equal 'num_classes' for multi-label "
                             f'segmentation (no background channel), got out_channels='
                             f'{out_channels}, num_classes={num_classes}')
        if kwargs.get('sampler') is not None:
            raise ValueError("'sampler' is not supported: mmseg's pixel samplers are single-label")
        kwargs.setdefault('dropout_ratio', 0.0)
        kwargs.setdefault(
            'loss_decode',
            dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True,
                 loss_name='loss_bce'))
        for cfg in _loss_cfgs(kwargs['loss_decode']):
            if cfg.get('type') in ('CrossEntropyLoss', 'mmseg.CrossEntropyLoss') \
                    and not cfg.get('use_sigmoid', False):
                raise ValueError("'loss_decode': CrossEntropyLoss must set use_sigmoid=True for "
                                 f'multi-label targets, got {cfg}')
        if class_names is not None:
            class_names = tuple(class_names)
            if len(class_names) != num_classes or not all(
                    isinstance(n, str) and n for n in class_names):
                raise ValueError(f"'class_names' must be {num_classes} non-empty strings "
                                 f'(num_classes), got {class_names!r}')
            if len(set(class_names)) != len(class_names) or 'seg' in class_names:
                raise ValueError(f"'class_names' must be unique and must not be 'seg' (the "
                                 f"'acc_seg' log key), got {class_names!r}")

        super().__init__(pool_scales=tuple(pool_scales), **kwargs)
        self.pool_type = pool_type
        self.pool_scales = tuple(pool_scales)
        self.class_names = class_names or tuple(f'c{i}' for i in range(num_classes))

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

    def multilabel_accuracy(self, seg_logits: Tensor, seg_label: Tensor) -> Dict[str, Tensor]:
        """Per-class and mean accuracy (percent) of ``sigmoid >= 0.5``.

        Args:
            seg_logits (Tensor): Logits (N, C, H, W), at the label size.
            seg_label (Tensor): Multi-hot labels (N, C, H, W).

        Returns:
            dict[str, Tensor]: ``acc_<class name>`` per class and ``acc_seg``.
        """
        with torch.no_grad():
            if self.ignore_index is None:
                valid = torch.ones_like(seg_label, dtype=torch.bool)
            else:
                valid = seg_label != self.ignore_index
            pred_pos = seg_logits.float().sigmoid() >= 0.5
            correct = (pred_pos == (seg_label == 1)) & valid
            n_valid = valid.sum(dim=(0, 2, 3)).float()
            n_correct = correct.sum(dim=(0, 2, 3)).float()
            acc = 100.0 * n_correct / n_valid.clamp_min(1.0)
            has_valid = n_valid > 0
            out = {f'acc_{name}': acc[i] for i, name in enumerate(self.class_names)}
            if bool(has_valid.any()):
                out['acc_seg'] = acc[has_valid].mean()
            else:
                out['acc_seg'] = acc.new_zeros(())
        return out

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: SampleList) -> dict:
        """Multi-label loss and accuracy.

        Args:
            seg_logits (Tensor): Logits from :meth:`forward` (N, C, h, w).
            batch_data_samples (list[SegDataSample]): Samples whose
                ``gt_sem_seg.data`` is a (C, H, W) multi-hot tensor (0/1,
                ``ignore_index`` = padding).

        Returns:
            dict[str, Tensor]: Loss items (one per distinct ``loss_name``),
            ``acc_<class>`` and ``acc_seg``.
        """
        seg_label = self._stack_batch_gt(batch_data_samples)
        if seg_label.dim() != 4 or seg_label.shape[1] != self.num_classes:
            raise ValueError(f"'gt_sem_seg' must be (C, H, W) multi-hot masks with C = "
                             f'num_classes = {self.num_classes}; stacked batch has shape '
                             f'{tuple(seg_label.shape)}')
        seg_logits = resize(
            input=seg_logits,
            size=seg_label.shape[2:],
            mode='bilinear',
            align_corners=self.align_corners)
        # As in mmseg: a single-class target becomes (N, H, W) so mmseg's BCE
        # (which squeezes (N, 1, H, W) logits) sees matching shapes.
        loss_label = seg_label.squeeze(1) if self.num_classes == 1 else seg_label
        losses_decode = (self.loss_decode if isinstance(self.loss_decode, nn.ModuleList)
                         else [self.loss_decode])
        loss = dict()
        for loss_decode in losses_decode:
            value = loss_decode(seg_logits, loss_label, weight=None,
                                ignore_index=self.ignore_index)
            if loss_decode.loss_name in loss:
                loss[loss_decode.loss_name] = loss[loss_decode.loss_name] + value
            else:
                loss[loss_decode.loss_name] = value
        loss.update(self.multilabel_accuracy(seg_logits, seg_label))
        return loss
