# The ViT-Tiny CPU recipe with a fixed iteration count instead of a time budget: 757
# iterations (what the 22-minute budget reached on the README's machine), warm-up 5 % +
# cosine to 5e-7 by iteration. The scratch side of the ViT-Tiny scratch-vs-SSL comparison
# (README "Does pretraining help?"); a slower or shared machine changes how long it takes,
# not what it learns.
_base_ = ['./upernet_vit-tiny_budget22min_aoi-256.py']
max_iters = 757
warmup_iters = 38  # 5 %
custom_hooks = []
train_cfg = dict(max_iters=max_iters, val_interval=300)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', eta_min=5e-7, by_epoch=False, begin=warmup_iters,
         end=max_iters),
]
