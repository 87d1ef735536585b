"""Evaluation metrics for multi-label (overlapping classes) segmentation."""
from .multilabel_iou_metric import MultiLabelIoUMetric

__all__ = ['MultiLabelIoUMetric']
