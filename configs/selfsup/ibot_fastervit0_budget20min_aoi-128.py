# CPU recipe: iBOT, FasterViT-0, 20-minute budget on 2 cores (32-px block masks: 4 x 4 tokens on
# the 128-px global crops; patch loss after the first 25 % of the budget; lr 2e-4). The final
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
optim_wrapper = dict(optimizer=dict(lr=2e-4))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=200, max_keep_ckpts=1))
