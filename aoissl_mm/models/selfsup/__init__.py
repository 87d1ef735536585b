"""Self-supervised algorithms (mmpretrain ``MODELS``): mask-token MAE, DINO, iBOT."""
from .dino import DINO
from .ibot import IBOT
from .mask_token_mae import MaskTokenMAE

__all__ = ['DINO', 'IBOT']
__all__ += ['MaskTokenMAE']
