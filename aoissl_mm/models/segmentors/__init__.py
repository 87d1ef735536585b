"""Multi-label segmentors (registered in ``mmseg.registry.MODELS``)."""
from .multilabel_encoder_decoder import MultiLabelEncoderDecoder
from .multilabel_seg_tta_model import MultiLabelSegTTAModel
from .retrieval_segmentor import RetrievalSegmentor

__all__ = ['MultiLabelEncoderDecoder', 'MultiLabelSegTTAModel', 'RetrievalSegmentor']
