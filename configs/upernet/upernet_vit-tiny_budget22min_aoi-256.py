# CPU recipe: ViT-Tiny + multi-label UPerNet, the FasterViT-0 CPU recipe with batch 8 and
# LR 5e-4. Why each choice: README "CPU recipe".
_base_ = [
    '../_base_/models/vit-tiny_upernet.py', '../_base_/datasets/aoi_synthetic_256.py',
    '../_base_/schedules/cpu_budget_22min.py'
]
train_dataloader = dict(batch_size=8)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
model = dict(decode_head=dict(loss_decode=_base_.bce_dice_loss))
