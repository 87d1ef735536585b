# CPU recipe: FasterViT-0 + multi-label UPerNet from scratch on 2 cores in under 30 minutes:
# 256² crops, batch 4, LR 8e-4, BCE + soft Dice, no layer decay, 22-minute budget; evaluation
# on the 512² centre crops. Why each choice: README "CPU recipe".
_base_ = [
    '../_base_/models/fastervit0_upernet.py', '../_base_/datasets/aoi_synthetic_256.py',
    '../_base_/schedules/cpu_budget_22min.py'
]
train_dataloader = dict(batch_size=4)
optim_wrapper = dict(optimizer=dict(lr=8e-4))
model = dict(decode_head=dict(loss_decode=_base_.bce_dice_loss))
