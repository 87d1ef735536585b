"""Held-out MAE loss (tools/mae_loss.py): hand-computed value, same crops and masks, errors."""
import os
import os.path as osp
import runpy
import sys

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'selfsup', 'mae_vit-tiny_budget20min_aoi-256.py')
MEAN, STD = (45.42, 59.82), (56.70, 69.03)  # the config's Z-score (spec set A)
V0, V1 = 100, 30  # the constant grey values of the two lights


@pytest.fixture(scope='module')
def constant_images(tmp_path_factory):
    """Two 256² buffer pairs (one in a sub-folder), each light a constant grey value."""
    root = tmp_path_factory.mktemp('heldout')
    for rel in ('images/test/a', 'images/test/sub/b'):
        os.makedirs(root / osp.dirname(rel), exist_ok=True)
        Image.fromarray(np.full((256, 256), V0, np.uint8)).save(root / f'{rel}_buffer0.png')
        Image.fromarray(np.full((256, 256), V1, np.uint8)).save(root / f'{rel}_buffer1.png')
    return str(root)


def _checkpoint(path, zero_decoder, seed=0):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    from aoissl_mm.utils import load_config
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    model = MODELS.build(load_config(CONFIG).model)
    if zero_decoder:
        torch.nn.init.zeros_(model.neck.decoder_pred.weight)
        torch.nn.init.zeros_(model.neck.decoder_pred.bias)
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


def test_zero_prediction_loss_equals_hand_computed_mse(constant_images, tmp_path):
    """A decoder that predicts 0 everywhere scores the mean squared Z-scored pixel of the
    masked units: with constant lights that is ((V0-m0)/s0)² and ((V1-m1)/s1)² averaged
    over the two channels, whatever the crops and masks."""
    from aoissl_mm.apis import mae_heldout_loss
    ckpt = _checkpoint(tmp_path / 'zero.pth', zero_decoder=True)
    got = mae_heldout_loss(CONFIG, [ckpt], constant_images, crops_per_image=2, batch_size=3,
                           progress=False)
    t0, t1 = (V0 - MEAN[0]) / STD[0], (V1 - MEAN[1]) / STD[1]
    assert got[ckpt] == pytest.approx((t0**2 + t1**2) / 2, rel=1e-5)


def test_same_crops_and_masks_for_every_checkpoint(tmp_path):
    """The same weights score the same loss wherever they stand in the list; another seed
    draws other crops and masks (on a real, non-constant image), hence another loss."""
    from aoissl_mm.apis import mae_heldout_loss
    from aoissl_mm.datasets.synthetic import generate_synthetic_aoi
    root = str(tmp_path / 'data')
    generate_synthetic_aoi(root, num_train=0, num_val=0, num_test=2, num_pretrain=0,
                           num_families=1, size_range=(300, 340), progress=False)
    a = _checkpoint(tmp_path / 'a.pth', zero_decoder=False, seed=1)
    b = _checkpoint(tmp_path / 'b.pth', zero_decoder=False, seed=2)
    a2 = str(tmp_path / 'a2.pth')
    os.link(a, a2)
    got = mae_heldout_loss(CONFIG, [a, b, a2], root, crops_per_image=1, batch_size=2,
                           progress=False)
    assert got[a] == got[a2] and got[a] != got[b]
    other = mae_heldout_loss(CONFIG, [a], root, crops_per_image=1, batch_size=2, seed=5,
                             progress=False)
    assert other[a] != got[a]


def test_errors_name_the_config_and_checkpoint(constant_images, tmp_path):
    from aoissl_mm.apis import mae_heldout_loss
    with pytest.raises(TypeError, match='fastervit0_upernet_aoi_cpu.py.*MaskTokenMAE'):
        mae_heldout_loss(osp.join(ROOT, 'configs', 'fastervit0_upernet_aoi_cpu.py'), ['x.pth'],
                         constant_images)
    with pytest.raises(ValueError, match='given twice'):
        mae_heldout_loss(CONFIG, ['x.pth', 'x.pth'], constant_images)
    with pytest.raises(ValueError, match='crops_per_image'):
        mae_heldout_loss(CONFIG, ['x.pth'], constant_images, crops_per_image=0)
    bad = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict={'backbone.cls_token': torch.zeros(1, 1, 192)}), bad)
    with pytest.raises(ValueError, match='other.pth'):
        mae_heldout_loss(CONFIG, [bad], constant_images, progress=False)


def test_tool_sorts_by_iteration_and_writes_csv(constant_images, tmp_path, monkeypatch, capsys):
    ckpts = [_checkpoint(tmp_path / f'iter_{i}.pth', zero_decoder=True) for i in (200, 20)]
    out = str(tmp_path / 'loss.csv')
    monkeypatch.setattr(sys, 'argv', ['mae_loss.py', CONFIG, *ckpts, '--data-root',
                                      constant_images, '--crops', '1', '--out', out])
    runpy.run_path(osp.join(ROOT, 'tools', 'mae_loss.py'), run_name='__main__')
    rows = open(out).read().splitlines()
    assert rows[0] == 'checkpoint,heldout_loss'
    assert [r.split(',')[0] for r in rows[1:]] == ckpts[::-1]  # full paths, by iteration
    assert 'iter_20.pth' in capsys.readouterr().out
