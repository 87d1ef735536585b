"""Backbones shared by mmseg and mmpretrain: FasterViT-0 and ViT-Tiny (2-channel)."""
from .aoi_vit import AOIViT
from .fastervit import FasterViT
from .pretrained import load_backbone_weights

__all__ = ['AOIViT', 'FasterViT', 'load_backbone_weights']
