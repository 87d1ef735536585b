"""Multi-label (sigmoid, overlapping classes) version of mmseg's ``DepthwiseSeparableASPPHead``."""
from typing import Optional, Sequence

from mmseg.models.decode_heads import DepthwiseSeparableASPPHead
from mmseg.registry import MODELS

from .multilabel_head_mixin import MultiLabelHeadMixin


@MODELS.register_module()
class MultiLabelDepthwiseSeparableASPPHead(MultiLabelHeadMixin, DepthwiseSeparableASPPHead):
    """mmseg's ``DepthwiseSeparableASPPHead`` with class-wise sigmoid outputs (DeepLabV3+).

    Used by the ResNet-18 + DeepLabV3+ baseline.

    The architecture is mmseg's unchanged; :class:`MultiLabelHeadMixin`
    replaces the single-label loss/accuracy and checks the arguments
    (``out_channels == num_classes``, sigmoid losses).

    Args:
        class_names (Sequence[str], optional): Names for the per-class
            accuracy log keys.
        **kwargs: Arguments of ``DepthwiseSeparableASPPHead``.
    """

    def __init__(self, class_names: Optional[Sequence[str]] = None, **kwargs) -> None:
        super().__init__(**self._multilabel_kwargs(class_names, kwargs))
        self._set_class_names(class_names)
