# DINO, ViT-Tiny, paper protocol (spec §5): multi-crop 2 x 224 + 6 x 96, batch 300, AdamW
# (0.9, 0.95) lr 5e-4, wd 0.05, 8-hour budget (warm-up 5 % + cosine by elapsed time), teacher
# momentum 0.996 -> 1 and temperature 0.04 -> 0.07 by the same share; AMP when CUDA is present.
# Fine-tune the result with configs/vit-tiny_upernet_aoi_from_ssl.py (the encoder is under
# `backbone.`).
_base_ = [
    '../_base_/models/dino_vit-tiny.py', '../_base_/datasets/aoi_pretrain_multicrop.py',
    '../_base_/schedules/dino_ibot_budget_8h.py', '../_base_/selfsup_runtime.py'
]
train_dataloader = dict(batch_size=300)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
cpu_recipe = 'configs/selfsup/dino_vit-tiny_budget20min_aoi-128.py'
