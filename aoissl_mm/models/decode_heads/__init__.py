"""Multi-label decode heads (registered in ``mmseg.registry.MODELS``)."""
from .aoi_max_ppm import AOIMaxPPM
from .multilabel_uper_head import MultiLabelUPerHead

__all__ = ['AOIMaxPPM', 'MultiLabelUPerHead']
