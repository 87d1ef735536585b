# CPU recipe: iBOT, ViT-Tiny, 20-minute budget on 2 cores: the DINO CPU recipe (lr 1/10 of the
# paper's, 4e-5; both losses with teacher temperature 0.02 and centre momentum 0.5; teacher
# momentum 0.99 -> 1; 10 % warm-up; clipping at 3; why: ../_base_/schedules/
# dino_ibot_budget_20min.py) with 16-px block masks on the global crops.
_base_ = [
    '../_base_/models/ibot_vit-tiny.py', '../_base_/datasets/aoi_pretrain_multicrop_cpu.py',
    '../_base_/schedules/dino_ibot_budget_20min.py', '../_base_/selfsup_runtime.py'
]
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadAOIImage'),
    dict(_base_.multicrop_cpu, mask_patch_size=16),
    dict(type='PackInputs'),
]))
model = dict(
    loss_cls=dict(teacher_temp=0.02, center_momentum=0.5),
    loss_patch=dict(teacher_temp=0.02, center_momentum=0.5))
optim_wrapper = dict(optimizer=dict(lr=4e-5))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=200, max_keep_ckpts=1))
