"""Sigmoid BCE with a per-class positive weight, for (N, C, H, W) multi-label logits."""
from typing import Optional, Sequence

import torch
from mmseg.models.losses import CrossEntropyLoss
from mmseg.models.losses.cross_entropy_loss import binary_cross_entropy
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class MultiLabelBCELoss(CrossEntropyLoss):
    """mmseg's sigmoid ``CrossEntropyLoss`` whose ``class_weight`` weighs each class's positives.

    For every element of class ``c`` with target ``t`` and logit ``x``::

        loss = -(w_c * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x)))

    averaged over the valid (non-``ignore_index``) elements, exactly
    ``torch.nn.functional.binary_cross_entropy_with_logits`` with
    ``pos_weight`` shaped ``(C, 1, 1)``. mmseg's own class passes
    ``class_weight`` as a ``(C,)`` ``pos_weight``, which broadcasts over the
    width axis of (N, C, H, W) logits instead of the classes (the multi-label
    heads refuse that combination). A rare, small class (wedges: 0.05 % of
    the synthetic pixels) can be weighted up without touching the others.

    Args:
        class_weight (Sequence[float], optional): Positive weight per class
            (``num_classes`` values, > 0). None weighs every class 1 (plain
            BCE).
        avg_non_ignore (bool): Average over the valid elements only.
            Defaults to True.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Name of the loss item. Defaults to 'loss_bce'.
    """

    def __init__(self,
                 class_weight: Optional[Sequence[float]] = None,
                 avg_non_ignore: bool = True,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_bce') -> None:
        super().__init__(use_sigmoid=True, class_weight=None, loss_weight=loss_weight,
                         loss_name=loss_name, avg_non_ignore=avg_non_ignore)
        if class_weight is not None:
            class_weight = [float(w) for w in class_weight]
            if not class_weight or min(class_weight) <= 0:
                raise ValueError(f"'class_weight' must be positive weights, one per class, got "
                                 f'{class_weight}')
        self.pos_weight = class_weight

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """The weighted BCE of (N, C, H, W) logits against multi-hot targets."""
        # a single-class head hands (N, H, W) targets, which mmseg's BCE expects for (N, 1, H, W)
        single = cls_score.dim() >= 2 and cls_score.shape[1] == 1 and \
            label.dim() == cls_score.dim() - 1
        expected = cls_score.shape[:1] + cls_score.shape[2:] if single else cls_score.shape
        if cls_score.dim() < 2 or label.shape != expected:
            raise ValueError(f'MultiLabelBCELoss: logits and multi-hot targets must have the '
                             f'same (N, C, ...) shape, got {tuple(cls_score.shape)} and '
                             f'{tuple(label.shape)}')
        pos_weight = None
        if self.pos_weight is not None:
            if len(self.pos_weight) != cls_score.shape[1]:
                raise ValueError(f"MultiLabelBCELoss: 'class_weight' has {len(self.pos_weight)} "
                                 f'values for {cls_score.shape[1]} classes')
            pos_weight = torch.tensor(self.pos_weight, dtype=cls_score.dtype,
                                      device=cls_score.device)
            if not single:
                pos_weight = pos_weight.view(-1, *([1] * (cls_score.dim() - 2)))
        reduction = reduction_override or self.reduction
        return self.loss_weight * binary_cross_entropy(
            cls_score, label, weight, class_weight=pos_weight, reduction=reduction,
            avg_factor=avg_factor, avg_non_ignore=self.avg_non_ignore, ignore_index=ignore_index,
            **kwargs)
