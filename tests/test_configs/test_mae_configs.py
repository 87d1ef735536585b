"""The MAE pretraining configs: paper protocol, CPU recipes, and they build."""
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SELFSUP = osp.join(ROOT, 'configs', 'selfsup')
CONFIGS = {
    'mae_vit-tiny_budget8h_aoi-512.py': ('AOIViT', 16, 512),
    'mae_fastervit0_budget8h_aoi-512.py': ('FasterViT', 32, 512),
    'mae_vit-tiny_budget20min_aoi-256.py': ('AOIViT', 16, 256),
    'mae_fastervit0_budget20min_aoi-256.py': ('FasterViT', 32, 256),
}


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_mae_config(name, pretrain_scope):
    from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS
    backbone, unit, crop = CONFIGS[name]
    cfg = Config.fromfile(osp.join(SELFSUP, name))
    assert cfg.default_scope == 'mmpretrain' and cfg.amp_if_cuda is True
    model = cfg.model
    assert model.type == 'MaskTokenMAE' and model.mask_ratio == 0.75
    assert model.backbone.type == backbone
    assert model.data_preprocessor.type == 'AOISelfSupDataPreprocessor'
    assert model.neck.patch_size == model.head.patch_size == unit
    assert (model.neck.embed_dims, model.neck.depth, model.neck.num_heads) == (384, 2, 6)
    assert model.head.type == 'MAEPretrainHead' and model.head.norm_pix is False

    # spec §4.5: AdamW (0.9, 0.95), wd 0.05, absolute LR 1.5e-4, clip 5; time budget
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.lr == 1.5e-4
    assert tuple(opt.optimizer.betas) == (0.9, 0.95) and opt.optimizer.weight_decay == 0.05
    assert opt.clip_grad.max_norm == 5.0
    hook = cfg.custom_hooks[0]
    assert hook.type == 'TimeBudgetHook' and cfg.param_scheduler == []
    # the paper protocol also probes the encoder by retrieval (k 30, threshold 0.3, beta 0.02)
    # (the CPU recipe probes once, after its budget: interval None)
    probes = [h for h in cfg.custom_hooks[1:]]
    assert [h.type for h in probes] == ['RetrievalProbeHook']
    assert (probes[0].interval is None) == (crop != 512)
    assert cfg.val_cfg is None and cfg.test_cfg is None

    loader = cfg.train_dataloader
    assert DATASETS.get(loader.dataset.type) is not None
    assert [t.type for t in loader.dataset.pipeline] == [
        'LoadAOIImage', 'AOIAugment', 'PositiveAnchoredRandomCrop', 'PackInputs']
    for t in loader.dataset.pipeline:
        assert TRANSFORMS.get(t.type) is not None, t.type
    (crop_t, ) = [t for t in loader.dataset.pipeline if t.type == 'PositiveAnchoredRandomCrop']
    assert crop_t.crop_size == crop and crop % unit == 0
    if crop == 512:  # the paper's protocol
        assert loader.batch_size == 100 and hook.budget_h == 8.0
        assert loader.dataset.data_root == 'data/synthetic_aoi'
    else:  # CPU recipe: 20 minutes, its own larger unlabelled set, no labelled images
        assert hook.budget_s == 20 * 60 and loader.batch_size <= 16
        assert loader.dataset.data_root == 'data/synthetic_aoi_pretrain'
        syn = loader.dataset.synthetic
        assert syn.data_root == loader.dataset.data_root
        assert (syn.num_train, syn.num_val, syn.num_test) == (0, 0, 0)
        assert syn.num_pretrain > 60
    built = MODELS.build(model)
    assert built.mask_unit == unit


# fixed-iteration twin -> (its time-budget recipe, max_iters, warm-up iterations, the
# fine-tuning config that starts from its checkpoint)
TWINS = {
    'mae_fastervit0_279it_aoi-256.py': ('mae_fastervit0_budget20min_aoi-256.py', 279, 14,
                                        'upernet_fastervit0-maepre_773it_aoi-256.py'),
    'mae_vit-tiny_600it_aoi-256.py': ('mae_vit-tiny_budget20min_aoi-256.py', 600, 30,
                                      'upernet_vit-tiny-maepre_757it_aoi-256.py'),
}


@pytest.mark.parametrize('twin', sorted(TWINS))
def test_mae_fixed_iteration_twin(twin, pretrain_scope, check_fixed_iteration_twin):
    recipe, max_iters, warmup, finetune = TWINS[twin]
    cfg = check_fixed_iteration_twin(twin, recipe, max_iters, warmup, finetune)
    assert cfg.custom_hooks == []
