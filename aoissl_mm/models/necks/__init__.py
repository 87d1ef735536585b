"""Necks of the self-supervised algorithms (mmpretrain ``MODELS``): the MAE decoder."""
from .mask_token_mae_decoder import MaskTokenMAEDecoder

__all__ = ['MaskTokenMAEDecoder']
