# iBOT, FasterViT-0, paper protocol (spec §6): masks on the 32-px grid (7 x 7 tokens for the
# 224-px global crops), the CLS = mean of the final tokens, the patch loss only after the first
# 25 % of the budget, lr 2e-4. Fine-tune with configs/fastervit0_upernet_aoi_from_ssl.py.
_base_ = [
    '../_base_/models/ibot_fastervit0.py', '../_base_/datasets/aoi_pretrain_multicrop.py',
    '../_base_/schedules/dino_ibot_budget_8h.py', '../_base_/selfsup_runtime.py'
]
train_dataloader = dict(
    batch_size=300,
    dataset=dict(pipeline=[
        dict(type='LoadAOIImage'),
        dict(_base_.multicrop, mask_patch_size=32),
        dict(type='PackInputs'),
    ]))
optim_wrapper = dict(optimizer=dict(lr=2e-4))
cpu_recipe = 'configs/selfsup/ibot_fastervit0_budget20min_aoi-128.py'
