"""Tests of loading pre-trained (self-supervised) weights into the AOI backbones."""
import logging

import pytest
import torch

import aoissl_mm  # noqa: F401  (applies compat, registers modules)
from aoissl_mm.models.backbones import AOIViT, FasterViT, load_backbone_weights

torch.set_num_threads(2)


@pytest.fixture(scope='module')
def fvit() -> FasterViT:
    torch.manual_seed(0)
    return FasterViT().eval()


def small_vit(**kwargs) -> AOIViT:
    torch.manual_seed(0)
    kwargs.setdefault('img_size', 64)
    return AOIViT(**kwargs).eval()




# ----------------------------------------------------------- weight loading
def _save(path, state):
    torch.save(state, str(path))
    return str(path)


def test_checkpoint_round_trip_mmengine_style(tmp_path, caplog):
    src = small_vit()
    with torch.no_grad():
        src.mask_token.normal_()
    ckpt = {'meta': {'epoch': 3},
            'state_dict': {**{'backbone.' + k: v for k, v in src.state_dict().items()},
                           'neck.decoder_pos': torch.zeros(3)}}
    path = _save(tmp_path / 'ssl.pth', ckpt)
    torch.manual_seed(1)
    dst = AOIViT(img_size=64)
    assert not torch.equal(dst.pos_embed, src.pos_embed)
    logger = logging.getLogger('test_backbones_load')
    with caplog.at_level(logging.INFO, logger='test_backbones_load'):
        loaded, missing, unexpected = load_backbone_weights(dst, path, logger=logger)
    n = len(src.state_dict())
    assert len(loaded) == n and missing == [] and unexpected == []
    assert f'loaded {n}/{n} backbone parameter tensors from {path}' in caplog.text
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_checkpoint_raw_and_encoder_prefix_and_init_cfg(tmp_path):
    src = small_vit()
    raw = _save(tmp_path / 'raw.pth', src.state_dict())
    enc = _save(tmp_path / 'enc.pth', {'encoder.' + k: v for k, v in src.state_dict().items()})
    for path in (raw, enc):
        torch.manual_seed(2)
        dst = AOIViT(img_size=64, init_cfg=dict(type='Pretrained', checkpoint=path,
                                                prefix='backbone.'))
        dst.init_weights()
        assert torch.equal(dst.blocks[3].mlp.fc1.weight, src.blocks[3].mlp.fc1.weight)
        assert dst.is_init


def test_checkpoint_partial_fastervit_and_pos_resize(tmp_path, fvit):
    # a ViT pretrained at img_size 32 (2x2 grid) loads into a 64 model (4x4): table resized
    src = AOIViT(img_size=32)
    path = _save(tmp_path / 'vit32.pth', {'backbone.' + k: v for k, v in src.state_dict().items()})
    dst = AOIViT(img_size=64)
    load_backbone_weights(dst, path)
    torch.testing.assert_close(dst.pos_embed[0, 0], src.pos_embed[0, 0])
    assert tuple(dst.pos_embed.shape) == (1, 17, 384)
    # a checkpoint missing some tensors loads the rest and reports them
    part = {'backbone.' + k: v.clone() for k, v in fvit.state_dict().items()
            if k.startswith('stem.')}
    path = _save(tmp_path / 'stem.pth', {'state_dict': part})
    # ... only when asked to: by default a partial checkpoint is refused and nothing is loaded
    before = {k: v.clone() for k, v in fvit.state_dict().items()}
    with pytest.raises(ValueError, match=r'stem\.pth.*fills only \d+/\d+ tensors of FasterViT; '
                                         r"missing: .*allow_partial=True"):
        load_backbone_weights(fvit, path)
    assert all(torch.equal(v, before[k]) for k, v in fvit.state_dict().items())
    with pytest.raises(ValueError, match='fills only'):
        FasterViT(init_cfg=dict(type='Pretrained', checkpoint=path)).init_weights()
    loaded, missing, _ = load_backbone_weights(fvit, path, allow_partial=True)
    assert set(loaded) == {k[len('backbone.'):] for k in part}
    assert 'norm.weight' in missing


def test_checkpoint_errors(tmp_path, fvit):
    model = small_vit()
    nothing = _save(tmp_path / 'other.pth', {'state_dict': {'head.fc.weight': torch.zeros(2, 2)}})
    with pytest.raises(RuntimeError, match='no tensor of checkpoint'):
        load_backbone_weights(model, nothing)
    other = FasterViT(in_channels=3)
    wrong = _save(tmp_path / 'rgb.pth', {'backbone.' + k: v for k, v in other.state_dict().items()})
    with pytest.raises(ValueError, match=r'stem\.conv1\.weight: expected \(64, 2, 3, 3\), '
                                         r'found \(64, 3, 3, 3\)'):
        load_backbone_weights(fvit, wrong)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_backbone_weights(model, str(tmp_path / 'missing.pth'))
    with pytest.raises(ValueError, match="needs 'checkpoint'"):
        AOIViT(img_size=32, init_cfg=dict(type='Pretrained')).init_weights()
