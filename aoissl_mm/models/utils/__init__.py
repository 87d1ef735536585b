"""Pieces shared across models: layers and the multi-label prediction rule.

Layers used by the backbones and, next, the self-supervised decoders and heads:
attention, the transformer MLP, window partitioning and grid coordinates,
absolute position embeddings and the continuous relative-position bias. And
the one rule that turns per-class scores into multi-label masks
(:func:`threshold_scores`), used by every segmentor and head.
"""
from .attention import Attention
from .mlp import Mlp
from .multilabel_prediction import check_thresholds, restore_geometry, threshold_scores
from .pos_embed import PositionMLP, interpolate_pos_table
from .relative_position import ContinuousRelativePositionBias, log_spaced_relative_coords
from .window_ops import grid_coords, window_partition, window_reverse

__all__ = [
    'Attention', 'ContinuousRelativePositionBias', 'Mlp', 'PositionMLP', 'grid_coords',
    'interpolate_pos_table', 'log_spaced_relative_coords', 'window_partition', 'window_reverse',
    'check_thresholds', 'restore_geometry', 'threshold_scores'
]
