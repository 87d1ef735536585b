# ViT-Tiny + multi-label UPerNet, the paper's protocol: 512² crops, batch 64, AdamW LR 1e-3
# with layer decay 0.75, 8-hour time budget.
_base_ = [
    '../_base_/models/vit-tiny_upernet.py', '../_base_/datasets/aoi_synthetic.py',
    '../_base_/schedules/adamw_llrd.py', '../_base_/schedules/budget_8h.py',
    '../_base_/default_runtime.py'
]
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
cpu_recipe = 'configs/vit-tiny_upernet_aoi_cpu.py'  # named at start on a machine without CUDA
