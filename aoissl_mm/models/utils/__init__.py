"""Layers shared by the backbones and the self-supervised decoders and heads.

Attention, the transformer MLP, window partitioning and grid coordinates,
absolute position embeddings and the continuous relative-position bias.
"""
from .attention import Attention
from .mlp import Mlp
from .pos_embed import PositionMLP, interpolate_pos_table
from .relative_position import ContinuousRelativePositionBias, log_spaced_relative_coords
from .window_ops import grid_coords, window_partition, window_reverse

__all__ = [
    'Attention', 'ContinuousRelativePositionBias', 'Mlp', 'PositionMLP', 'grid_coords',
    'interpolate_pos_table', 'log_spaced_relative_coords', 'window_partition', 'window_reverse'
]
