"""DINO / iBOT configs: paper protocol values, CPU recipes, and checkpoints that the
fine-tuning configs load unchanged."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SELFSUP = osp.join(ROOT, 'configs', 'selfsup')
# config stem -> (algorithm, backbone, CLS width, mask grid in px, lr, fine-tuning config)
ALGOS = {
    'dino_vit-tiny': ('DINO', 'AOIViT', 384, None, 5e-4, 'vit-tiny_upernet_aoi_from_ssl.py'),
    'ibot_vit-tiny': ('IBOT', 'AOIViT', 384, 16, 4e-4, 'vit-tiny_upernet_aoi_from_ssl.py'),
    'ibot_fastervit0': ('IBOT', 'FasterViT', 512, 32, 2e-4, 'fastervit0_upernet_aoi_from_ssl.py'),
}
PAPER = {stem: f'{stem}_budget8h_aoi-224.py' for stem in ALGOS}
CPU = {stem: f'{stem}_budget20min_aoi-128.py' for stem in ALGOS}


def _multicrop(cfg):
    (crop, ) = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'AOIMultiCrop']
    return crop


def _common_checks(cfg, stem):
    algo, backbone, width, grid, _, _ = ALGOS[stem]
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.model.type == algo and cfg.model.backbone.type == backbone
    assert cfg.model.head.in_channels == width and cfg.model.head.out_channels == 768
    assert (cfg.model.head.hidden_channels, cfg.model.head.bottleneck_channels) == (2048, 256)
    assert cfg.model.loss_cls.student_temp == 0.1
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, tuple(opt.betas), opt.weight_decay) == ('AdamW', (0.9, 0.95), 0.05)
    assert cfg.optim_wrapper.type == 'OptimWrapper' and cfg.amp_if_cuda  # AMP on CUDA
    assert cfg.param_scheduler == [] and cfg.get('val_cfg') is None
    budget, teacher = cfg.custom_hooks[:2]  # the paper schedule adds a retrieval probe
    assert budget.type == 'TimeBudgetHook' and teacher.type == 'TeacherScheduleHook'
    assert cfg.model.get('patch_loss_start', 0.0) == (0.25 if backbone == 'FasterViT' else 0.0)
    crop = _multicrop(cfg)
    assert crop.mask_patch_size == grid
    assert cfg.train_dataloader.dataset.type == 'AOIPretrainDataset'
    return crop, budget, teacher


def _losses(cfg):
    return [cfg.model.loss_cls] + ([cfg.model.loss_patch] if cfg.model.type == 'IBOT' else [])


@pytest.mark.parametrize('stem', sorted(ALGOS))
def test_paper_protocol(stem):
    cfg = Config.fromfile(osp.join(SELFSUP, PAPER[stem]))
    crop, budget, teacher = _common_checks(cfg, stem)
    assert cfg.optim_wrapper.optimizer.lr == ALGOS[stem][4]
    assert cfg.optim_wrapper.get('clip_grad') is None and budget.warmup_share == 0.05
    assert all(loss.center_momentum == 0.9 for loss in _losses(cfg))
    assert tuple(teacher.momentum) == (0.996, 1.0)
    assert tuple(teacher.teacher_temp) == (0.04, 0.07) and teacher.temp_warmup_share == 0.3
    assert (crop.global_size, crop.local_size) == (224, 96)
    assert crop.num_local == 6 and tuple(crop.global_scale) == (0.4, 1.0)
    assert tuple(crop.local_scale) == (0.05, 0.4) and crop.black_thr == 0.95
    assert crop.max_tries == 10 and crop.mask_prob == 0.5 and tuple(crop.mask_ratio) == (0.1, 0.5)
    assert budget.budget_h == 8.0 and cfg.train_cfg.max_iters == 10_000_000
    assert cfg.train_dataloader.batch_size == 300


@pytest.mark.parametrize('stem', sorted(ALGOS))
def test_cpu_recipe(stem):
    cfg = Config.fromfile(osp.join(SELFSUP, CPU[stem]))
    crop, budget, teacher = _common_checks(cfg, stem)
    assert budget.budget_s <= 20 * 60
    # the short-budget retuning (configs/_base_/schedules/dino_ibot_budget_20min.py)
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(ALGOS[stem][4] / 10)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=3.0) and budget.warmup_share == 0.1
    assert all((loss.teacher_temp, loss.center_momentum) == (0.02, 0.5) for loss in _losses(cfg))
    assert tuple(teacher.momentum) == (0.99, 1.0) and tuple(teacher.teacher_temp) == (0.02, 0.02)
    dataset = cfg.train_dataloader.dataset
    assert dataset.data_root == 'data/synthetic_aoi_pretrain'  # not data/synthetic_aoi
    assert dict(dataset.synthetic) == dict(data_root='data/synthetic_aoi_pretrain',
                                           num_pretrain=600, seed=0, num_train=0, num_val=0,
                                           num_test=0)
    assert crop.global_size % 32 == 0 and crop.local_size % 32 == 0


@pytest.mark.parametrize('stem', sorted(ALGOS))
def test_checkpoint_loads_into_the_finetuning_config(stem, tmp_path, pretrain_scope):
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    from mmseg.registry import MODELS as SEG_MODELS

    from aoissl_mm.models.backbones.pretrained import load_backbone_weights
    cfg = Config.fromfile(osp.join(SELFSUP, CPU[stem]))
    torch.manual_seed(0)
    model = PRETRAIN_MODELS.build(cfg.model)
    path = str(tmp_path / 'ssl.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    finetune = Config.fromfile(osp.join(ROOT, 'configs', ALGOS[stem][5]))
    assert finetune.model.backbone.init_cfg.prefix == 'backbone.'
    backbone_cfg = dict(finetune.model.backbone)
    backbone_cfg.pop('init_cfg')
    backbone = SEG_MODELS.build(backbone_cfg)
    loaded, missing, _ = load_backbone_weights(backbone, path, prefix='backbone.')
    assert missing == [] and len(loaded) == len(backbone.state_dict())
    source = model.backbone.state_dict()
    for key, value in backbone.state_dict().items():
        if key != 'pos_embed':  # ViT: the 224/512 table is resized to the fine-tuning grid
            assert torch.equal(value, source[key]), key


# fixed-iteration twin -> (its time-budget recipe, max_iters, warm-up iterations, the
# fine-tuning config that starts from its checkpoint's teacher backbone)
TWINS = {
    'dino_vit-tiny_250it_aoi-128.py': ('dino_vit-tiny', 250, 25,
                                       'upernet_vit-tiny-dinopre_757it_aoi-256.py'),
    'ibot_vit-tiny_250it_aoi-128.py': ('ibot_vit-tiny', 250, 25,
                                       'upernet_vit-tiny-ibotpre_757it_aoi-256.py'),
}


@pytest.mark.parametrize('twin', sorted(TWINS))
def test_fixed_iteration_twin(twin, pretrain_scope, check_fixed_iteration_twin):
    """A twin: the CPU recipe with an iteration schedule and no time budget, whose checkpoint
    (the EMA teacher's backbone) is exactly the file its fine-tuning config loads."""
    stem, max_iters, warmup, finetune = TWINS[twin]
    cfg = check_fixed_iteration_twin(twin, CPU[stem], max_iters, warmup, finetune,
                                     prefix='teacher.backbone.')
    # no TimeBudgetHook: the recipe's teacher schedule, its share = iter / max_iters
    cpu = Config.fromfile(osp.join(SELFSUP, CPU[stem]))
    (teacher, ) = [h for h in cpu.custom_hooks if h.type == 'TeacherScheduleHook']
    assert [h.type for h in cfg.custom_hooks] == ['TeacherScheduleHook']
    assert cfg.custom_hooks[0] == teacher
