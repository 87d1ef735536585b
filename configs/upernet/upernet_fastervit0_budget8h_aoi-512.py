# FasterViT-0 + multi-label UPerNet, the paper's protocol: 512² crops, batch 32, AdamW LR 5e-4
# with layer decay 0.75, 8-hour time budget. Generates the synthetic benchmark on first use.
_base_ = [
    '../_base_/models/fastervit0_upernet.py', '../_base_/datasets/aoi_synthetic.py',
    '../_base_/schedules/adamw_llrd.py', '../_base_/schedules/budget_8h.py',
    '../_base_/default_runtime.py'
]
cpu_recipe = 'configs/fastervit0_upernet_aoi_cpu.py'  # named at start on a machine without CUDA
