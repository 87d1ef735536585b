"""2-channel-safe, multi-label-aware data transforms (cv2 only)."""
from .load_aoi_image import LoadAOIImage
from .load_multilabel_annotations import LoadMultiLabelAnnotations
from .pack_multilabel_seg_inputs import PackMultiLabelSegInputs

__all__ = ['LoadAOIImage', 'LoadMultiLabelAnnotations', 'PackMultiLabelSegInputs']
