"""Multi-label segmentors (registered in ``mmseg.registry.MODELS``)."""
from .multilabel_encoder_decoder import MultiLabelEncoderDecoder

__all__ = ['MultiLabelEncoderDecoder']
