"""Multi-label (sigmoid, overlapping classes) behaviour shared by the decode heads."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmseg.models.utils import resize
from mmseg.utils import SampleList
from torch import Tensor

from ..utils.multilabel_prediction import check_thresholds, threshold_scores


def _loss_cfgs(loss_decode: Union[dict, Sequence[dict]]) -> List[dict]:
    """Return ``loss_decode`` as a list of config dicts (for validation)."""
    if isinstance(loss_decode, dict):
        return [loss_decode]
    if isinstance(loss_decode, (list, tuple)):
        return list(loss_decode)
    raise TypeError(f"'loss_decode' must be a dict or a sequence of dicts, got "
                    f'{type(loss_decode).__name__}')



class MultiLabelHeadMixin:
    """Turns an mmseg ``BaseDecodeHead`` into a multi-label head.

    Put it first in the bases (``class H(MultiLabelHeadMixin, ASPPHead)``),
    pass the constructor ``kwargs`` through :meth:`_multilabel_kwargs` before
    calling the mmseg constructor and call :meth:`_set_class_names` after it.
    It replaces only what is single-label in mmseg: ``loss_by_feat``
    (mmseg's asserts one class id per pixel) and the accuracy log, and checks
    the arguments (``out_channels == num_classes``, sigmoid losses, no pixel
    sampler). Defaults: ``dropout_ratio=0.0`` and sigmoid BCE averaged over the
    valid elements (``ignore_index`` ignored element-wise).
    """

    @staticmethod
    def _multilabel_kwargs(class_names: Optional[Sequence[str]], kwargs: dict) -> dict:
        kwargs = dict(kwargs)
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
            if cfg.get('type') in ('CrossEntropyLoss', 'mmseg.CrossEntropyLoss') \
                    and cfg.get('class_weight') is not None:
                raise ValueError(
                    "'loss_decode': CrossEntropyLoss(use_sigmoid=True) passes 'class_weight' to "
                    "BCE as pos_weight, which broadcasts over the last (width) axis of (N, C, H, "
                    "W) logits, not over classes; use dict(type='MultiLabelBCELoss', "
                    f'class_weight=[...]) for per-class positive weights, got {cfg}')
        if class_names is not None:
            class_names = tuple(class_names)
            if len(class_names) != num_classes or not all(
                    isinstance(n, str) and n for n in class_names):
                raise ValueError(f"'class_names' must be {num_classes} non-empty strings "
                                 f'(num_classes), got {class_names!r}')
            if len(set(class_names)) != len(class_names) or 'seg' in class_names:
                raise ValueError(f"'class_names' must be unique and must not be 'seg' (the "
                                 f"'acc_seg' log key), got {class_names!r}")
        return kwargs

    def _set_class_names(self, class_names: Optional[Sequence[str]]) -> None:
        self.class_names = (tuple(class_names) if class_names is not None else
                            tuple(f'c{i}' for i in range(self.num_classes)))
        self.set_thresholds(0.5)

    def set_thresholds(self, threshold: Union[float, Sequence[float]]) -> None:
        """Set the per-class probability thresholds of the logged accuracy.

        :class:`MultiLabelEncoderDecoder` hands its own thresholds to its
        heads, so training accuracy and prediction use the same rule.

        Args:
            threshold (float | Sequence[float]): One value or one per class.
        """
        self.thresholds = check_thresholds(threshold, self.num_classes)

    def multilabel_accuracy(self, seg_logits: Tensor, seg_label: Tensor) -> Dict[str, Tensor]:
        """Per-class and mean accuracy (percent) of ``sigmoid >= threshold``.

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
            pred_pos = threshold_scores(seg_logits.float().sigmoid(), self.thresholds) == 1
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
