"""DINOv2Tokens: mmpretrain's DINOv2 ViT on 2-channel images (third channel = their mean)."""
import pytest
import torch
from mmpretrain.models.backbones import VisionTransformer
from mmseg.registry import MODELS


def test_forward_ssl_equals_vit_on_explicit_three_channels(seg_scope):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='DINOv2Tokens', img_size=56))
    ref = VisionTransformer(arch='dinov2-small', img_size=56, patch_size=14,
                            layer_scale_init_value=1e-5, out_type='raw')
    model.eval()
    ref.eval()  # mmpretrain's VisionTransformer.train() returns None
    ref.load_state_dict(model.state_dict())
    x = torch.randn(2, 2, 42, 56)
    three = torch.stack([x[:, 0], x[:, 1], (x[:, 0] + x[:, 1]) / 2], dim=1)
    with torch.no_grad():
        out = model.forward_ssl(x)
        (tokens, ) = ref(three)
    assert out['x_norm_patchtokens'].shape == (2, 3 * 4, 384)
    torch.testing.assert_close(out['x_norm_clstoken'], tokens[:, 0])
    torch.testing.assert_close(out['x_norm_patchtokens'], tokens[:, 1:])
    assert model.patch_size == 14
    with pytest.raises(ValueError, match='expected 2 .AOI. or 3 input channels, got 1'):
        model.forward_ssl(torch.zeros(1, 1, 28, 28))


def test_retrieval_segmentor_with_dinov2_backbone(seg_scope):
    model = MODELS.build(dict(
        type='RetrievalSegmentor', num_classes=4, backbone=dict(type='DINOv2Tokens', img_size=28),
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0], std=[1, 1])))
    assert model.patch_size == 14
    keys = model.extract_feat(torch.randn(1, 2, 28, 42))
    assert keys.shape == (1, 6, 384)
    torch.testing.assert_close(keys.norm(dim=-1), torch.ones(1, 6))
