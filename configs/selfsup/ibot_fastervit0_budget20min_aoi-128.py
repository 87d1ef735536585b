# CPU recipe: iBOT, FasterViT-0, 20-minute budget on 2 cores (32-px block masks: 4 x 4 tokens on
# the 128-px global crops; patch loss after the first 25 % of the budget) with the DINO CPU
# recipe's retuning (lr 1/10 of the paper's, 2e-5; both losses with teacher temperature 0.02 and
# centre momentum 0.5; teacher momentum 0.99 -> 1; 10 % warm-up; clipping at 3; why:
# ../_base_/schedules/dino_ibot_budget_20min.py). The final
# checkpoint loads into configs/fastervit0_upernet_aoi_from_ssl.py unchanged.
_base_ = [
    '../_base_/models/ibot_fastervit0.py', '../_base_/datasets/aoi_pretrain_multicrop_cpu.py',
    '../_base_/schedules/dino_ibot_budget_20min.py', '../_base_/selfsup_runtime.py'
]
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadAOIImage'),
    dict(_base_.multicrop_cpu, mask_patch_size=32),
    dict(type='PackInputs'),
]))
model = dict(
    loss_cls=dict(teacher_temp=0.02, center_momentum=0.5),
    loss_patch=dict(teacher_temp=0.02, center_momentum=0.5))
optim_wrapper = dict(optimizer=dict(lr=2e-5))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=200, max_keep_ckpts=1))
