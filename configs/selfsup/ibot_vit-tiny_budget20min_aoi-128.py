# CPU recipe: iBOT, ViT-Tiny, 20-minute budget on 2 cores (the DINO CPU recipe with 16-px block
# masks on the global crops and lr 4e-4).
_base_ = [
    '../_base_/models/ibot_vit-tiny.py', '../_base_/datasets/aoi_pretrain_multicrop_cpu.py',
    '../_base_/schedules/dino_ibot_budget_20min.py', '../_base_/selfsup_runtime.py'
]
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadAOIImage'),
    dict(_base_.multicrop_cpu, mask_patch_size=16),
    dict(type='PackInputs'),
]))
optim_wrapper = dict(optimizer=dict(lr=4e-4))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=200, max_keep_ckpts=1))
