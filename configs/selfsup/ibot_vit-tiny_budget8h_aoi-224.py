# iBOT, ViT-Tiny, paper protocol (spec §6): the DINO recipe with block-wise masks on the 16-px
# token grid of each global crop (probability 0.5, ratio U(0.1, 0.5)), the masked-patch loss from
# the start, lr 4e-4.
_base_ = [
    '../_base_/models/ibot_vit-tiny.py', '../_base_/datasets/aoi_pretrain_multicrop.py',
    '../_base_/schedules/dino_ibot_budget_8h.py', '../_base_/selfsup_runtime.py'
]
train_dataloader = dict(
    batch_size=300,
    dataset=dict(pipeline=[
        dict(type='LoadAOIImage'),
        dict(_base_.multicrop, mask_patch_size=16),
        dict(type='PackInputs'),
    ]))
optim_wrapper = dict(optimizer=dict(lr=4e-4))
cpu_recipe = 'configs/selfsup/ibot_vit-tiny_budget20min_aoi-128.py'
