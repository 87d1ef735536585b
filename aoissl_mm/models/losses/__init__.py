"""Multi-label segmentation losses (registered in ``mmseg.registry.MODELS``).

Sigmoid BCE averaged over valid elements needs no plugin class: use mmseg's
``dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True)``,
which masks ``ignore_index`` element-wise when logits and targets are both
(N, C, H, W). Per-class positive weights need :class:`MultiLabelBCELoss`
(mmseg's ``class_weight`` would broadcast over the width axis).
"""
from .multilabel_bce_loss import MultiLabelBCELoss
from .multilabel_dice_loss import MultiLabelDiceLoss
from .multilabel_jaccard_loss import MultiLabelJaccardLoss

__all__ = ['MultiLabelBCELoss', 'MultiLabelDiceLoss', 'MultiLabelJaccardLoss']
# self-supervised losses (registered in ``mmpretrain.registry.MODELS``)
from .dino_loss import DINOLoss
from .ibot_patch_loss import IBOTPatchLoss

__all__ += ['DINOLoss', 'IBOTPatchLoss']
