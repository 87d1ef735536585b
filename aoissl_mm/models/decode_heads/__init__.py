"""Multi-label decode heads (registered in ``mmseg.registry.MODELS``)."""
from .aoi_max_ppm import AOIMaxPPM
from .multilabel_depthwise_separable_aspp_head import MultiLabelDepthwiseSeparableASPPHead
from .multilabel_fcn_head import MultiLabelFCNHead
from .multilabel_head_mixin import MultiLabelHeadMixin
from .multilabel_lraspp_head import MultiLabelLRASPPHead
from .multilabel_uper_head import MultiLabelUPerHead

__all__ = [
    'AOIMaxPPM', 'MultiLabelUPerHead', 'MultiLabelHeadMixin',
    'MultiLabelDepthwiseSeparableASPPHead', 'MultiLabelLRASPPHead', 'MultiLabelFCNHead'
]
