"""The tiny RetrievalSegmentor both segmentor test modules build."""
import pytest

P, C = 16, 4  # patch, classes
MEAN, STD = [45.42, 59.82], [56.70, 69.03]


def _build_retrieval_model(**kwargs):
    """A ViT-Tiny (64² positions) RetrievalSegmentor with a flat CPU memory, seeded."""
    import torch
    from mmseg.registry import MODELS
    cfg = dict(
        type='RetrievalSegmentor',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=MEAN, std=STD, bgr_to_rgb=False,
                               pad_val=0, seg_pad_val=255),
        backbone=dict(type='AOIViT', arch='tiny', in_channels=2, img_size=64, patch_size=P,
                      drop_path_rate=0.0),
        num_classes=C, class_names=['wire', 'ball', 'wedge', 'epoxy'],
        memory=dict(index_type='flat', device='cpu'))
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)


@pytest.fixture(scope='session')
def build_model():
    """The function :func:`_build_retrieval_model`."""
    return _build_retrieval_model
