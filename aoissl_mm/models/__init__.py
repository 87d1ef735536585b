"""Backbones, heads, segmentors, losses and data preprocessors."""
from . import backbones, data_preprocessors, decode_heads, losses, segmentors  # noqa: F401
