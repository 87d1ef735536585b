"""Layer-wise LR decay and weight-decay exemptions of every parameter group.

Tests the optimiser wiring of the backbones' ``get_layer_depth``: the configs
build mmpretrain's ``LearningRateDecayOptimWrapperConstructor``, which asks
the segmentor (and through it the backbone) for each parameter's layer id.
The expected layer of each parameter is written out here from the spec's rule
(§7.3 REC with mmpretrain's convention, scale = 0.75 ** (num_layers - id - 1)),
independently of the backbones' ``get_layer_depth``; the expected weight decay
from the documented rule (none on norms, biases, 1-D tensors, tokens, position
tables and the position/relative-bias MLPs).
"""
import re
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import aoissl_mm  # noqa: F401  (applies compat, registers modules)
from aoissl_mm.models.backbones import AOIViT

# tests/test_models/test_backbones/<this file> -> the repository root
ROOT = Path(__file__).resolve().parents[3]
DECAY = 0.75
BASE_WD = 0.05
NO_DECAY_KEYS = ('cls_token', 'pos_embed', 'mask_token', 'pos_mlp', 'cpb_mlp')


def _groups(config, lr, num_layers, decay):
    from mmseg.registry import MODELS
    path = ROOT / 'configs' / config
    assert path.is_file(), f'{path} not found (ROOT={ROOT})'
    cfg = Config.fromfile(str(path))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = wrapper.optimizer.param_groups
    assert all(g['params'] for g in groups)
    n_params = sum(len(g['params']) for g in groups)
    assert n_params == len([p for p in model.parameters() if p.requires_grad])  # none frozen
    assert wrapper.optimizer.defaults['lr'] == lr
    # exactly one learning rate per layer id: lr * decay**k for k = 0 .. num_layers - 1
    expected_lrs = sorted({lr * decay**k for k in range(num_layers)})
    assert sorted({g['lr'] for g in groups}) == pytest.approx(expected_lrs)
    return groups


def _no_decay(name, shape_ndim):
    return (shape_ndim == 1 or name.endswith('.bias') or any(k in name for k in NO_DECAY_KEYS))


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


# (config, base LR, layers, expected-layer rule, layer decay, name keys exempted although
# their tensors have more than one dimension, with how many such tensors)
CASES = [
    ('fastervit0_upernet_aoi.py', 5e-4, 18, _fastervit_layer, DECAY,
     dict(mask_token=1, pos_mlp=22, cpb_mlp=22)),
    ('vit-tiny_upernet_aoi.py', 1e-3, 8, _vit_layer, DECAY,
     dict(cls_token=1, pos_embed=1, mask_token=1)),
    # the CPU recipes: same model and exemptions, layer decay off (every group at the base LR)
    ('fastervit0_upernet_aoi_cpu.py', 8e-4, 18, _fastervit_layer, 1.0,
     dict(mask_token=1, pos_mlp=22, cpb_mlp=22)),
    ('vit-tiny_upernet_aoi_cpu.py', 5e-4, 8, _vit_layer, 1.0,
     dict(cls_token=1, pos_embed=1, mask_token=1)),
]


@pytest.mark.parametrize('config,lr,num_layers,rule,decay,exempt', CASES,
                         ids=[c[0] for c in CASES])
def test_every_parameter_group(config, lr, num_layers, rule, decay, exempt):
    groups = _groups(config, lr, num_layers, decay)
    seen_layers = set()
    for g in groups:
        (p, ) = g['params']
        name = g['param_name']
        layer = rule(name)
        seen_layers.add(layer)
        assert g['lr'] == pytest.approx(lr * decay**(num_layers - layer - 1)), name
        expected_wd = 0.0 if _no_decay(name, p.ndim) else BASE_WD
        assert g['weight_decay'] == pytest.approx(expected_wd), name
    assert seen_layers == set(range(num_layers))
    # stem at the deepest decay, head at the base LR
    stem = [g for g in groups if rule(g['param_name']) == 0]
    head = [g for g in groups if g['param_name'].startswith('decode_head.')]
    assert stem and head
    assert all(g['lr'] == pytest.approx(lr * decay**(num_layers - 1)) for g in stem)
    assert all(g['lr'] == pytest.approx(lr) for g in head)
    # the name exemptions are exercised on matrices, which the 1-D/bias rules would decay
    for key, count in exempt.items():
        matrices = [g for g in groups if key in g['param_name'] and g['params'][0].ndim > 1]
        assert len(matrices) == count, key
        assert all(g['weight_decay'] == 0.0 for g in matrices), key
    decayed = [g for g in groups if g['weight_decay'] == pytest.approx(BASE_WD)]
    assert decayed and all(g['params'][0].ndim > 1 for g in decayed)


def test_layer_decay_constructor_uses_the_ids():
    from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
    model = AOIViT(img_size=32)
    ctor = LearningRateDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        dict(layer_decay_rate=0.5))
    groups = ctor(model).optimizer.param_groups
    scales = {g['param_name']: g['lr_scale'] for g in groups}
    assert scales['pos_embed'] == 0.5**7
    assert scales['blocks.0.attn.qkv.weight'] == 0.5**6
    assert scales['blocks.5.mlp.fc1.bias'] == 0.5**1
    assert scales['norm.weight'] == 1.0
