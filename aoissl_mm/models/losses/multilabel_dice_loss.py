"""Soft Dice loss for multi-label (sigmoid) segmentation, computed from logits."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class MultiLabelDiceLoss(nn.Module):
    """Soft Dice loss in segmentation_models_pytorch's ``multilabel`` mode.

    ``pred`` are logits of shape (N, C, H, W); probabilities are
    ``p = sigmoid(pred)``. ``target`` is a multi-hot tensor of the same shape
    with values in {0, 1}; elements equal to ``ignore_index`` (255 = padding)
    are ignored element-wise: both ``p`` and ``t`` are zeroed there.
    For every class ``c``, summing over the batch and all pixels::

        inter_c = sum(p * t)            card_c = sum(p + t)
        score_c = (2 * inter_c + smooth) / (card_c + smooth).clamp_min(eps)
        loss_c  = 1 - score_c

    A class with no positive (valid) target pixel in the batch has an
    undefined Dice, so its ``loss_c`` is masked out:

    * ``mean_over_present=False`` (default, exactly segmentation_models_pytorch,
      which the reference code used): ``loss = mean_c(loss_c * present_c)``,
      i.e. absent classes contribute 0 and the mean still divides by ``C``.
    * ``mean_over_present=True``: ``loss = sum_c(loss_c * present_c) /
      max(#present, 1)``, i.e. the mean over present classes only.

    With no present class at all the loss is 0 (gradient-connected). The
    result is multiplied by ``loss_weight``. The computation runs in float32
    (safe under fp16 autocast).

    Args:
        smooth (float): Additive smoothing of numerator and denominator.
            Defaults to 0.0.
        eps (float): Lower clamp of the denominator. Defaults to 1e-7.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        ignore_index (int | None): Target value ignored element-wise; the
            ``ignore_index`` passed to :meth:`forward` (the decode head
            passes its own) takes precedence. Defaults to 255.
        mean_over_present (bool): Average over present classes only instead
            of over all ``C`` classes. Defaults to False.
        loss_name (str): Name of the loss item in the log; must start with
            ``loss_`` to be back-propagated. Defaults to 'loss_dice'.
    """

    def __init__(self,
                 smooth: float = 0.0,
                 eps: float = 1e-7,
                 loss_weight: float = 1.0,
                 ignore_index: Optional[int] = 255,
                 mean_over_present: bool = False,
                 loss_name: str = 'loss_dice') -> None:
        super().__init__()
        if smooth < 0:
            raise ValueError(f"'smooth' must be >= 0, got {smooth}")
        if eps <= 0:
            raise ValueError(f"'eps' must be > 0, got {eps}")
        self.smooth = float(smooth)
        self.eps = float(eps)
        self.loss_weight = float(loss_weight)
        self.ignore_index = ignore_index
        self.mean_over_present = bool(mean_over_present)
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item (mmseg sums items with equal names)."""
        return self._loss_name

    def compute_score(self, intersection: Tensor, cardinality: Tensor) -> Tensor:
        """Per-class soft Dice score.

        Args:
            intersection (Tensor): ``sum(p * t)`` per class, shape (C,).
            cardinality (Tensor): ``sum(p + t)`` per class, shape (C,).

        Returns:
            Tensor: Scores of shape (C,).
        """
        return (2.0 * intersection + self.smooth) / (cardinality + self.smooth).clamp_min(self.eps)

    def _prepare(self, pred: Tensor, target: Tensor, weight: Optional[Tensor],
                 ignore_index: Optional[int]) -> Tuple[Tensor, Tensor]:
        """Validate inputs; return masked probabilities and targets as (C, M).

        Args:
            pred (Tensor): Logits (N, C, H, W).
            target (Tensor): Multi-hot target (N, C, H, W), or (N, H, W) when
                C == 1.
            weight (Tensor | None): Optional element weights broadcastable to
                (N, C, H, W); an (N, H, W) pixel weight is applied to all
                classes.
            ignore_index (int | None): Value ignored element-wise.

        Returns:
            tuple[Tensor, Tensor]: ``p`` and ``t`` of shape (C, N*H*W).
        """
        if pred.dim() < 2:
            raise ValueError(f"'pred' must be logits of shape (N, C, ...), got shape "
                             f'{tuple(pred.shape)}')
        num_classes = pred.shape[1]
        if target.dim() == pred.dim() - 1 and num_classes == 1:
            target = target.unsqueeze(1)
        if target.shape != pred.shape:
            raise ValueError(f"'target' must be a multi-hot tensor of the same shape as 'pred' "
                             f'{tuple(pred.shape)}, got {tuple(target.shape)}')
        if ignore_index is not None:
            valid = target != ignore_index
        else:
            valid = torch.ones_like(target, dtype=torch.bool)
        bad = valid & (target != 0) & (target != 1)
        if bool(bad.any()):
            raise ValueError(f"'target' values must be 0 or 1 (or ignore_index={ignore_index}), "
                             f'got {torch.unique(target[bad]).tolist()}')
        mask = valid.float()
        if weight is not None:
            weight = weight.float()
            if weight.dim() == pred.dim() - 1:
                weight = weight.unsqueeze(1)
            try:
                mask = mask * weight
            except RuntimeError as err:
                raise ValueError(f"'weight' of shape {tuple(weight.shape)} does not broadcast "
                                 f'to {tuple(pred.shape)}') from err
            if mask.shape != pred.shape:
                raise ValueError(f"'weight' of shape {tuple(weight.shape)} does not broadcast "
                                 f'to {tuple(pred.shape)}')
        prob = pred.float().sigmoid() * mask
        tgt = torch.where(valid, target, torch.zeros_like(target)).float() * mask
        prob = prob.transpose(0, 1).reshape(num_classes, -1)
        tgt = tgt.transpose(0, 1).reshape(num_classes, -1)
        return prob, tgt

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Logits (N, C, H, W).
            target (Tensor): Multi-hot target (N, C, H, W) (any integer or
                float dtype) or (N, H, W) when C == 1.
            weight (Tensor | None): Optional element weights. Defaults to None.
            ignore_index (int | None): Overrides ``self.ignore_index`` when
                given. Defaults to None.

        Returns:
            Tensor: Scalar loss.
        """
        ignore = self.ignore_index if ignore_index is None else ignore_index
        prob, tgt = self._prepare(pred, target, weight, ignore)
        intersection = (prob * tgt).sum(dim=1)
        cardinality = (prob + tgt).sum(dim=1)
        loss_c = 1.0 - self.compute_score(intersection, cardinality)
        present = (tgt.sum(dim=1) > 0).to(loss_c.dtype)
        if self.mean_over_present:
            loss = (loss_c * present).sum() / present.sum().clamp_min(1.0)
        else:
            loss = (loss_c * present).mean()
        return self.loss_weight * loss
