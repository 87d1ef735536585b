# CPU recipe: DINO, ViT-Tiny, 20-minute budget on 2 cores; 2 x 128 + 4 x 64 px crops, batch 16,
# lr 5e-5, centre momentum 0.5, teacher temperature 0.02 (constant), teacher momentum 0.99 -> 1,
# 10 % warm-up, gradient clipping at 3 (why: ../_base_/schedules/dino_ibot_budget_20min.py; the
# paper's lr 5e-4 with the 8-hour schedule's teacher collapses to a uniform teacher, loss ln 768,
# within ~20 iterations); 600 unlabelled synthetic images in data/synthetic_aoi_pretrain
# (generated on first use). The final checkpoint loads into configs/vit-tiny_upernet_aoi_from_ssl.py
# unchanged. dino_vit-tiny_250it_aoi-128.py is the same recipe over a fixed 250 iterations.
_base_ = [
    '../_base_/models/dino_vit-tiny.py', '../_base_/datasets/aoi_pretrain_multicrop_cpu.py',
    '../_base_/schedules/dino_ibot_budget_20min.py', '../_base_/selfsup_runtime.py'
]
model = dict(loss_cls=dict(teacher_temp=0.02, center_momentum=0.5))
optim_wrapper = dict(optimizer=dict(lr=5e-5))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=200, max_keep_ckpts=1))
