"""MaskTokenMAE: targets, masking, loss on masked units, bad input, checkpoint hand-over."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint

from aoissl_mm.models.selfsup import MaskTokenMAE

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def one_thread():
    # tiny tensors gain nothing from threads, and on a shared 2-core machine two OpenMP
    # threads per process were measured 20-40x slower than one
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
MODEL_CFGS = {
    'vit': osp.join(ROOT, 'configs', '_base_', 'models', 'mae_vit-tiny.py'),
    'fastervit': osp.join(ROOT, 'configs', '_base_', 'models', 'mae_fastervit0.py'),
}
FINETUNE_CFGS = {
    'vit': osp.join(ROOT, 'configs', 'upernet', 'upernet_vit-tiny-sslpre_budget8h_aoi-512.py'),
    'fastervit': osp.join(ROOT, 'configs', 'upernet',
                          'upernet_fastervit0-sslpre_budget8h_aoi-512.py'),
}


def _model_cfg(kind, **changes):
    cfg = copy.deepcopy(Config.fromfile(MODEL_CFGS[kind]).model.to_dict())
    if kind == 'vit':
        cfg['backbone']['img_size'] = 64
    cfg.update(changes)
    return cfg


def _build(kind, **changes):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(_model_cfg(kind, **changes))


@pytest.fixture(scope='module')
def vit_mae():
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return _build('vit')


@pytest.fixture(scope='module')
def fvit_mae():
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return _build('fastervit')


def _loop_patchify(img, p):
    """Independent reference: unit t = (row t // w, column t % w); its pixels as (p, p, C)."""
    b, c, h, w = img.shape
    units = []
    for t in range((h // p) * (w // p)):
        r, col = divmod(t, w // p)
        patch = img[:, :, r * p:(r + 1) * p, col * p:(col + 1) * p]  # (B, C, p, p)
        units.append(patch.permute(0, 2, 3, 1).reshape(b, -1))
    return torch.stack(units, dim=1)


@pytest.mark.parametrize('kind, unit', [('vit', 16), ('fastervit', 32)])
def test_targets_are_the_pixels_of_their_own_unit(kind, unit, vit_mae, fvit_mae):
    model = vit_mae if kind == 'vit' else fvit_mae
    assert model.mask_unit == unit
    img = torch.randn(2, 2, 4 * unit, 4 * unit)
    target = model.head.construct_target(img)
    assert target.shape == (2, 16, unit * unit * 2)
    assert torch.equal(target, _loop_patchify(img, unit))
    # spot check one pixel by hand: unit 6 = row 1, column 2; pixel (3, 5) of channel 1
    assert target[1, 6, (3 * unit + 5) * 2 + 1] == img[1, 1, unit + 3, 2 * unit + 5]


def test_loss_counts_masked_units_only_by_hand(pretrain_scope):
    from mmpretrain.models.heads import MAEPretrainHead
    head = MAEPretrainHead(loss=dict(type='PixelReconstructionLoss', criterion='L2'),
                           patch_size=2, in_channels=2)
    img = torch.zeros(1, 2, 4, 4)
    for t, value in enumerate((1.0, 2.0, 3.0, 4.0)):  # unit t filled with t + 1
        r, c = divmod(t, 2)
        img[:, :, 2 * r:2 * r + 2, 2 * c:2 * c + 2] = value
    pred = torch.zeros(1, 4, 8, requires_grad=True)
    mask = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    loss = head.loss(pred, img, mask)
    assert loss.item() == pytest.approx((1.0 + 16.0) / 2)  # units 0 and 3: MSE 1 and 16
    loss.backward()
    assert torch.count_nonzero(pred.grad[0, 1:3]) == 0 and torch.all(pred.grad[0, 0] != 0)


@pytest.mark.parametrize('ratio, grid, masked', [
    (0.75, (4, 4), 12), (0.4, (4, 4), 7), (0.95, (2, 2), 4), (0.2, (8, 8), 13), (0.7, (2, 5), 7)])
def test_masked_count_per_sample(ratio, grid, masked, vit_mae):
    model = copy.copy(vit_mae)
    model.mask_ratio = ratio
    mask = model.generate_mask(64, grid)
    assert mask.dtype == torch.bool and mask.shape == (64, *grid)
    assert mask.flatten(1).sum(1).tolist() == [masked] * 64
    if masked < grid[0] * grid[1]:
        assert len({tuple(m.flatten().tolist()) for m in mask}) > 1  # per-sample draws


def test_mask_is_uniform_over_units(vit_mae):
    mask = vit_mae.generate_mask(4000, (2, 2)).float()  # 3 of 4 masked
    assert torch.allclose(mask.mean(0), torch.full((2, 2), 0.75), atol=0.03)


def test_model_loss_is_mse_on_masked_units_and_encoder_gets_the_mask(vit_mae, monkeypatch):
    model = vit_mae
    x = torch.randn(2, 2, 64, 64)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, 0, :3] = True
    mask[1, 2:, 1] = True
    monkeypatch.setattr(model, 'generate_mask', lambda b, grid, device=None: mask)
    loss = model.loss(x, None)['loss']
    with torch.no_grad():
        pred = model.reconstruct(x, mask)
    per_unit = ((pred - _loop_patchify(x, 16))**2).mean(-1)
    assert loss.item() == pytest.approx(per_unit[mask.flatten(1)].mean().item(), rel=1e-5)
    # the encoder replaced masked patches by its mask token: their pixels do not matter
    changed = x.clone()
    changed[0, :, :16, :48] += 5.0  # the three masked units of sample 0
    with torch.no_grad():
        assert torch.allclose(model.reconstruct(changed, mask), pred, atol=1e-5)
        changed[0, :, 16:32, :16] += 5.0  # a visible unit
        assert not torch.allclose(model.reconstruct(changed, mask), pred, atol=1e-3)


def test_fastervit_loss_and_extract_feat(fvit_mae):
    x = torch.randn(2, 2, 64, 64)
    loss = fvit_mae(x, None, mode='loss')['loss']
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert fvit_mae.backbone.mask_token.grad is not None
    assert fvit_mae.neck.mask_token.grad is not None
    feats = fvit_mae(x, mode='tensor')
    assert [tuple(f.shape) for f in feats] == [(2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2),
                                              (2, 512, 2, 2)]


@pytest.mark.parametrize('ratio', [0, 0.0, 1, 1.0, -0.1, 1.5, True, 'a', None])
def test_mask_ratio_outside_open_interval(ratio, pretrain_scope):
    with pytest.raises(ValueError, match='mask_ratio must be a number in'):
        _build('vit', mask_ratio=ratio)


@pytest.mark.parametrize('kind, size, match', [
    ('vit', (8, 8), 'smaller than one 16-px unit of the AOIViT mask grid'),
    ('fastervit', (16, 16), 'smaller than one 32-px unit of the FasterViT mask grid'),
    ('fastervit', (48, 48), 'not divisible by the 32-px mask grid of FasterViT'),
    ('vit', (40, 40), 'not divisible by the 16-px mask grid of AOIViT'),
    ('vit', (32, 64), 'not square'),
])
def test_bad_crop_sizes(kind, size, match, vit_mae, fvit_mae):
    model = vit_mae if kind == 'vit' else fvit_mae
    with pytest.raises(ValueError, match=match):
        model.loss(torch.zeros(1, 2, *size), None)


def test_parts_must_fit_the_backbone(vit_mae, pretrain_scope):
    cfg = _model_cfg('fastervit')
    with pytest.raises(ValueError, match='head.patch_size = 16 does not fit the FasterViT'):
        _build('fastervit', head=dict(cfg['head'], patch_size=16))
    with pytest.raises(ValueError, match='neck.in_channels = 384 does not fit'):
        _build('fastervit', neck=dict(cfg['neck'], in_channels=384))
    with pytest.raises(ValueError, match='expected one view per sample'):
        vit_mae.loss([torch.zeros(1, 2, 32, 32)] * 2, None)
    with pytest.raises(ValueError, match=r'expected a \(B, C, H, W\) image batch'):
        vit_mae.loss(torch.zeros(2, 32, 32), None)
    assert isinstance(vit_mae, MaskTokenMAE)


@pytest.mark.parametrize('kind', ['vit', 'fastervit'])
def test_finetune_config_loads_the_ssl_backbone(kind, tmp_path, pretrain_scope):
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS as SEG_MODELS
    # the recipes' 512 position table (the fine-tuning ViT is built for 512 too)
    ssl = _build(kind, backbone=dict(Config.fromfile(MODEL_CFGS[kind]).model.backbone))
    with torch.no_grad():  # make the weights distinguishable from any fresh init
        for p in ssl.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = str(tmp_path / 'mae.pth')
    save_checkpoint(dict(meta=dict(iter=3), state_dict=ssl.state_dict()), path)
    cfg = Config.fromfile(FINETUNE_CFGS[kind])
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    cfg.model.backbone.init_cfg.checkpoint = path
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(1)
        seg = SEG_MODELS.build(cfg.model)
        seg.init_weights()
    own = seg.backbone.state_dict()
    assert set(own) == {k[len('backbone.'):] for k in ssl.state_dict() if
                        k.startswith('backbone.')}
    for k, v in ssl.backbone.state_dict().items():
        assert torch.equal(own[k], v), k
