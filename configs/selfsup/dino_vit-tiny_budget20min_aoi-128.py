# CPU recipe: DINO, ViT-Tiny, 20-minute budget on 2 cores; 2 x 128 + 4 x 64 px crops, batch 16,
# lr 5e-4 (the reference's batch-16 setting), 600 unlabelled synthetic images in
# data/synthetic_aoi_pretrain (generated on first use). The final checkpoint loads into
# configs/vit-tiny_upernet_aoi_from_ssl.py unchanged.
_base_ = [
    '../_base_/models/dino_vit-tiny.py', '../_base_/datasets/aoi_pretrain_multicrop_cpu.py',
    '../_base_/schedules/dino_ibot_budget_20min.py', '../_base_/selfsup_runtime.py'
]
optim_wrapper = dict(optimizer=dict(lr=5e-4))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=200, max_keep_ckpts=1))
