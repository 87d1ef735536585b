# CPU recipe: MAE (mask tokens) on ViT-Tiny in 20 minutes on 2 cores: 256² crops, batch 8,
# 600 generated unlabelled images (data/synthetic_aoi_pretrain), LR 1.5e-4, warm-up 5 % +
# cosine by elapsed time. The final checkpoint (work_dirs/<this name>/iter_N.pth, named in
# work_dirs/<this name>/last_checkpoint) loads into upernet_vit-tiny-sslpre_*.py unchanged.
_base_ = [
    '../_base_/models/mae_vit-tiny.py', '../_base_/datasets/aoi_pretrain_mae_256.py',
    '../_base_/schedules/mae_cpu_budget20min.py'
]
