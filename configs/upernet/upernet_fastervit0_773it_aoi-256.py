# The FasterViT-0 CPU recipe with a fixed iteration count instead of a time budget: 773
# iterations (what the 22-minute budget reached on the machine of the README's first
# measurement), the same warm-up 5 % + cosine to 5e-7, by iteration. A slower or shared
# machine then changes how long the run takes, not what it learns: comparisons (scratch vs
# pretrained, optimiser changes) use it.
_base_ = ['./upernet_fastervit0_budget22min_aoi-256.py']
max_iters = 773
warmup_iters = 39  # 5 %
custom_hooks = []
train_cfg = dict(max_iters=max_iters, val_interval=300)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', eta_min=5e-7, by_epoch=False, begin=warmup_iters,
         end=max_iters),
]
