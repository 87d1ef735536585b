# DINO / iBOT multi-crop over the unlabelled pretraining images (spec §1.6, §1.7): 2 global crops
# (224 px, area 0.4-1.0) and 6 local crops (96 px, area 0.05-0.4), each with the AOI policy
# (SomeOf-3; the second global crop without contrast and gamma) and the >95 %-black re-sampling.
# iBOT configs add per-global-view block masks: dict(_base_.multicrop, mask_patch_size=16 or 32).
_base_ = ['./aoi_pretrain.py']
multicrop = dict(
    type='AOIMultiCrop',
    global_size=224,
    local_size=96,
    num_local=6,
    global_scale=(0.4, 1.0),
    local_scale=(0.05, 0.4),
    ratio=(3 / 4, 4 / 3),
    augment=dict(n=3),
    second_global_exclude=('contrast', 'gamma'),
    black_thr=0.95,
    max_tries=10,
    mask_patch_size=None,
    mask_prob=0.5,
    mask_ratio=(0.1, 0.5))
train_dataloader = dict(
    num_workers=8,
    dataset=dict(pipeline=[dict(type='LoadAOIImage'), multicrop, dict(type='PackInputs')]))
