# The iBOT ViT-Tiny CPU recipe with a fixed iteration count instead of a time budget: 250
# iterations (the same count as dino_vit-tiny_250it_aoi-128.py, so that the scratch-vs-SSL
# comparison gives DINO and iBOT the same number of optimiser steps), warm-up 10 % + cosine to
# 1e-7 by iteration; the teacher schedule follows iter / max_iters.
_base_ = ['./ibot_vit-tiny_budget20min_aoi-128.py']
max_iters = 250
warmup_iters = 25  # 10 %
custom_hooks = [_base_.teacher_schedule]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', eta_min=1e-7, by_epoch=False, begin=warmup_iters,
         end=max_iters),
]
