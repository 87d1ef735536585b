"""Soft Jaccard (IoU) loss for multi-label (sigmoid) segmentation, from logits."""
from typing import Optional

from mmseg.registry import MODELS
from torch import Tensor

from .multilabel_dice_loss import MultiLabelDiceLoss


@MODELS.register_module()
class MultiLabelJaccardLoss(MultiLabelDiceLoss):
    """Soft Jaccard loss in segmentation_models_pytorch's ``multilabel`` mode.

    Same input handling, ignore rule, absent-class masking and reduction as
    :class:`MultiLabelDiceLoss`; only the per-class score differs::

        union_c = card_c - inter_c = sum(p + t) - sum(p * t)
        score_c = (inter_c + smooth) / (union_c + smooth).clamp_min(eps)
        loss_c  = 1 - score_c

    Args:
        smooth (float): Additive smoothing. Defaults to 0.0.
        eps (float): Lower clamp of the denominator. Defaults to 1e-7.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        ignore_index (int | None): Target value ignored element-wise.
            Defaults to 255.
        mean_over_present (bool): Average over present classes only instead
            of over all ``C`` classes. Defaults to False.
        loss_name (str): Name of the loss item. Defaults to 'loss_jaccard'.
    """

    def __init__(self,
                 smooth: float = 0.0,
                 eps: float = 1e-7,
                 loss_weight: float = 1.0,
                 ignore_index: Optional[int] = 255,
                 mean_over_present: bool = False,
                 loss_name: str = 'loss_jaccard') -> None:
        super().__init__(smooth=smooth, eps=eps, loss_weight=loss_weight,
                         ignore_index=ignore_index, mean_over_present=mean_over_present,
                         loss_name=loss_name)

    def compute_score(self, intersection: Tensor, cardinality: Tensor) -> Tensor:
        """Per-class soft Jaccard score.

        Args:
            intersection (Tensor): ``sum(p * t)`` per class, shape (C,).
            cardinality (Tensor): ``sum(p + t)`` per class, shape (C,).

        Returns:
            Tensor: Scores of shape (C,).
        """
        union = cardinality - intersection
        return (intersection + self.smooth) / (union + self.smooth).clamp_min(self.eps)
