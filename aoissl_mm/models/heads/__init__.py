"""Heads of the self-supervised algorithms (mmpretrain ``MODELS``): DINO / iBOT projection."""
from .dino_head import DINOHead

__all__ = ['DINOHead']
