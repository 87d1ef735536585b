"""Tests of loading pre-trained (self-supervised) weights into the AOI backbones."""
import copy
import logging
import os.path as osp
import re
from typing import Dict

import pytest
import torch
from mmengine.config import Config

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


# ------------------------------------------- an SSL checkpoint of the other backbone
CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))),
                   'configs')


@pytest.fixture(scope='module')
def ssl_checkpoints(tmp_path_factory) -> Dict[str, str]:
    """SSL-style checkpoints (student under ``backbone.``, plus a head) of random weights."""
    root = tmp_path_factory.mktemp('ssl_other_backbone')
    paths = {}
    torch.manual_seed(3)
    for name, backbone in (('vit', AOIViT(img_size=64)), ('fastervit', FasterViT())):
        state = {'backbone.' + k: v for k, v in backbone.state_dict().items()}
        state['head.last_layer.weight'] = torch.randn(8, 4)
        paths[name] = _save(root / f'{name}_ssl.pth', {'meta': {'iter': 250}, 'state_dict': state})
    return paths


@pytest.mark.parametrize('config,checkpoint,found,expected', [
    ('fastervit0_upernet_aoi_from_ssl.py', 'vit', r'a ViT checkpoint \(pos_embed, blocks\.N\)',
     r'FasterViT \(levels\.N\)'),
    ('vit-tiny_upernet_aoi_from_ssl.py', 'fastervit', r'a FasterViT checkpoint \(levels\.N\)',
     r'AOIViT \(pos_embed, blocks\.N\)'),
], ids=['fastervit0-config_vit-checkpoint', 'vit-tiny-config_fastervit-checkpoint'])
def test_finetuning_config_refuses_the_other_backbones_ssl_checkpoint(
        config, checkpoint, found, expected, ssl_checkpoints, seg_scope):
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    backbone_cfg = copy.deepcopy(cfg.model.backbone)
    assert backbone_cfg.init_cfg.type == 'Pretrained'
    assert backbone_cfg.init_cfg.prefix == 'backbone.'
    path = ssl_checkpoints[checkpoint]
    backbone_cfg.init_cfg.checkpoint = path
    torch.manual_seed(0)
    backbone = MODELS.build(backbone_cfg)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with pytest.raises(ValueError) as err:
        backbone.init_weights()
    msg = str(err.value)
    # the existing message: the file, the backbone and every mismatching key with its shapes
    assert re.search(rf'checkpoint {re.escape(repr(path))} does not fit '
                     rf"{backbone_cfg.type} \(key prefix 'backbone\.'\); shape mismatch", msg)
    assert re.search(r'norm\.weight: expected \((384|512),\), found \((512|384),\)', msg)
    # ... and which backbone each side is
    assert re.search(rf"the checkpoint's 'backbone\.' keys look like {found}, but the "
                     rf"config's backbone is {expected}", msg), msg
    assert not backbone.is_init
    after = backbone.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_no_match_message_names_the_other_backbone(tmp_path):
    # no key in common at all (no norm / mask_token either): the "no tensor" error says it too
    model = small_vit()
    path = _save(tmp_path / 'fv_levels.pth', {'state_dict': {
        'backbone.levels.0.blocks.0.conv1.weight': torch.zeros(1),
        'backbone.stem.conv1.weight': torch.zeros(1)}})
    with pytest.raises(RuntimeError, match=r"no tensor of checkpoint .*'backbone\.' keys look "
                                           r'like a FasterViT checkpoint \(levels\.N\)'):
        load_backbone_weights(model, path)
    # same family, wrong shapes: no hint (the checkpoint IS a ViT)
    rgb = _save(tmp_path / 'vit_rgb.pth', {'backbone.' + k: v for k, v in
                                           AOIViT(img_size=64, in_channels=3).state_dict().items()})
    with pytest.raises(ValueError, match='patch_embed') as err:
        load_backbone_weights(model, rgb)
    assert 'look like' not in str(err.value)
