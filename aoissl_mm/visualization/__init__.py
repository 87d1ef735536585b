"""Multi-label visualizer and the 2-channel visualization hook (mmseg registries)."""
from .multilabel_seg_local_visualizer import MultiLabelSegLocalVisualizer, aoi_display_image
from .multilabel_visualization_hook import MultiLabelVisualizationHook

__all__ = ['MultiLabelSegLocalVisualizer', 'MultiLabelVisualizationHook', 'aoi_display_image']
