"""Backbones, heads, segmentors, losses, data preprocessors and self-supervised algorithms."""
from . import backbones, data_preprocessors, decode_heads, heads, losses, necks, segmentors, selfsup

__all__ = [
    'backbones', 'data_preprocessors', 'decode_heads', 'heads', 'losses', 'necks', 'segmentors',
    'selfsup'
]
