"""2-channel-safe, multi-label-aware data transforms (cv2 only)."""
from .load_aoi_image import LoadAOIImage
from .load_multilabel_annotations import LoadMultiLabelAnnotations
from .pack_multilabel_seg_inputs import PackMultiLabelSegInputs

__all__ = ['LoadAOIImage', 'LoadMultiLabelAnnotations', 'PackMultiLabelSegInputs']
from .aoi_augment import AOIAugment
from .pad_center_crop import PadCenterCrop
from .positive_anchored_random_crop import PositiveAnchoredRandomCrop

__all__ += ['AOIAugment', 'PadCenterCrop', 'PositiveAnchoredRandomCrop']
from .aoi_multi_crop import AOIMultiCrop  # noqa: E402

__all__ += ['AOIMultiCrop']
