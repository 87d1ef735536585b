"""Layer-wise LR decay and weight-decay exemptions of every parameter group.

The expected layer of each parameter is written out here from the spec's rule
(§7.3 REC with mmpretrain's convention, scale = 0.75 ** (num_layers - id - 1)),
independently of the backbones' ``get_layer_depth``.
"""
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DECAY = 0.75
BASE_WD = 0.05


def _groups(config, lr):
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = wrapper.optimizer.param_groups
    assert all(g['params'] for g in groups)
    n_params = sum(len(g['params']) for g in groups)
    assert n_params == len([p for p in model.parameters() if p.requires_grad])  # none frozen
    assert {g['lr'] for g in groups} and wrapper.optimizer.defaults['lr'] == lr
    return groups


def _no_decay(name, shape_ndim):
    return (shape_ndim == 1 or name.endswith('.bias') or any(
        k in name for k in ('cls_token', 'pos_embed', 'mask_token')))


def _fastervit_layer(name):
    # 18 layers: stem/mask token 0, 16 blocks 1..16, head level 17
    depths = [2, 3, 6, 5]
    first = [0, 2, 5, 11]
    if not name.startswith('backbone.') or name == 'backbone.norm.weight' or \
            name == 'backbone.norm.bias':
        return 17
    rest = name[len('backbone.'):]
    if rest.startswith('stem.') or rest == 'mask_token':
        return 0
    m = re.match(r'levels\.(\d)\.blocks\.(\d+)\.', rest)
    if m:
        level, block = int(m.group(1)), int(m.group(2))
        assert block < depths[level]
        return first[level] + block + 1
    m = re.match(r'levels\.(\d)\.downsample\.', rest)
    if m:  # with the first block of the next stage
        return first[int(m.group(1)) + 1] + 1
    raise AssertionError(f'unexpected parameter {name}')


def _vit_layer(name):
    # 8 layers: embeddings/tokens 0, 6 blocks 1..6, head level 7 (final norm too)
    if not name.startswith('backbone.') or name.startswith('backbone.norm.'):
        return 7
    rest = name[len('backbone.'):]
    if rest.split('.')[0] in ('patch_embed', 'cls_token', 'pos_embed', 'mask_token'):
        return 0
    m = re.match(r'blocks\.(\d)\.', rest)
    assert m, name
    return int(m.group(1)) + 1


@pytest.mark.parametrize('config,lr,num_layers,rule', [
    ('fastervit0_upernet_aoi.py', 5e-4, 18, _fastervit_layer),
    ('vit-tiny_upernet_aoi.py', 1e-3, 8, _vit_layer),
])
def test_every_parameter_group(config, lr, num_layers, rule):
    groups = _groups(config, lr)
    seen_layers = set()
    for g in groups:
        (p, ) = g['params']
        name = g['param_name']
        layer = rule(name)
        seen_layers.add(layer)
        assert g['lr'] == pytest.approx(lr * DECAY**(num_layers - layer - 1)), name
        expected_wd = 0.0 if _no_decay(name, p.ndim) else BASE_WD
        assert g['weight_decay'] == pytest.approx(expected_wd), name
    assert seen_layers == set(range(num_layers))
    # stem at the deepest decay, head at the base LR
    stem = [g for g in groups if rule(g['param_name']) == 0]
    head = [g for g in groups if g['param_name'].startswith('decode_head.')]
    assert stem and head
    assert all(g['lr'] == pytest.approx(lr * DECAY**(num_layers - 1)) for g in stem)
    assert all(g['lr'] == pytest.approx(lr) for g in head)
