# CPU recipe: ViT-Tiny + multi-label UPerNet, the FasterViT-0 CPU recipe with batch 8 and
# LR 5e-4. Why each choice: README "CPU recipe".
_base_ = [
    '../_base_/models/vit-tiny_upernet.py', '../_base_/datasets/aoi_synthetic_256.py',
    '../_base_/schedules/adamw_llrd.py', '../_base_/schedules/budget_22min.py',
    '../_base_/default_runtime.py'
]
train_dataloader = dict(batch_size=8)
optim_wrapper = dict(optimizer=dict(lr=5e-4), paramwise_cfg=dict(layer_decay_rate=1.0))
model = dict(decode_head=dict(loss_decode=_base_.bce_dice_loss))
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=300, max_keep_ckpts=1, save_last=True))
