"""find_unused_parameters in the segmentation configs matches what one training step uses.

DDP needs ``find_unused_parameters=True`` when a trainable parameter gets no gradient. The
reference is a brute-force backward pass of each model on a random batch: the parameters left
without a gradient are listed by hand for the transformers (mask tokens, FasterViT's final
norm, used only by SSL) and must be none for the CNN baselines, which set it to False.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# config -> (crop, parameters that never get a gradient in segmentation)
CASES = {
    'fastervit0_upernet_aoi_cpu.py': (64, {'backbone.mask_token', 'backbone.norm.weight',
                                           'backbone.norm.bias'}),
    'vit-tiny_upernet_aoi_cpu.py': (64, {'backbone.mask_token'}),
    'baselines/deeplabv3plus_r18_budget8h_aoi-512.py': (64, set()),
    'baselines/fcn_unet_budget8h_aoi-512.py': (64, set()),
    # LR-ASPP's image pooling (49x49 at stride 8) needs crops of at least 392
    'baselines/lraspp_mobilenetv3_budget8h_aoi-512.py': (512, set()),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_find_unused_parameters_matches_a_backward_pass(name, seg_scope):
    crop, expected = CASES[name]
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    num_classes = cfg.model.decode_head.num_classes
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 2, (num_classes, crop, crop), dtype=torch.uint8))
        sample.set_metainfo(dict(img_shape=(crop, crop), pad_shape=(crop, crop),
                                 ori_shape=(crop, crop)))
        samples.append(sample)
    losses = model(torch.randn(2, 2, crop, crop), samples, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    unused = {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None}
    assert unused == expected
    assert cfg.find_unused_parameters is bool(expected)


@pytest.mark.parametrize('name', ['dino_vit-tiny_budget20min_aoi-128.py',
                                  'ibot_fastervit0_budget20min_aoi-128.py',
                                  'ibot_vit-tiny_budget20min_aoi-128.py',
                                  'mae_fastervit0_budget20min_aoi-256.py'])
def test_selfsup_configs_let_ddp_find_unused_parameters(name):
    # measured with one backward pass each: DINO's student never uses its mask token, iBOT's
    # only once its patch loss starts (FasterViT: at 25 % of the budget) and on batches with
    # masked crops; the teacher is frozen (requires_grad=False) and ignored by DDP
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'selfsup', name))
    assert cfg.default_scope == 'mmpretrain' and cfg.find_unused_parameters is True
