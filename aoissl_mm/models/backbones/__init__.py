"""Backbones shared by mmseg and mmpretrain: FasterViT-0 and ViT-Tiny (2-channel); DINOv2 for
retrieval."""
from .aoi_vit import AOIViT
from .dinov2_tokens import DINOv2Tokens
from .fastervit import FasterViT
from .multi_channel_mobilenet_v3 import MultiChannelMobileNetV3
from .pretrained import load_backbone_weights

__all__ = [
    'AOIViT', 'DINOv2Tokens', 'FasterViT', 'MultiChannelMobileNetV3', 'load_backbone_weights'
]
