"""Self-supervised algorithms (mmpretrain ``MODELS``): mask-token MAE, DINO, iBOT."""
from .mask_token_mae import MaskTokenMAE

__all__ = ['MaskTokenMAE']
