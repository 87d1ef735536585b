# MAE with learnable mask tokens, FasterViT-0 (32-px mask units), the paper's protocol: 512²
# crops, batch 100, mask ratio 0.75, AdamW LR 1.5e-4, 8-hour budget. Fine-tune from its final
# checkpoint:
#   python tools/train.py configs/upernet/upernet_fastervit0-sslpre_budget8h_aoi-512.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=$(cat \
#           work_dirs/mae_fastervit0_budget8h_aoi-512/last_checkpoint)
_base_ = [
    '../_base_/models/mae_fastervit0.py', '../_base_/datasets/aoi_pretrain_mae.py',
    '../_base_/schedules/mae_adamw_budget8h.py', '../_base_/selfsup_runtime.py'
]
train_dataloader = dict(batch_size=100)
cpu_recipe = 'configs/selfsup/mae_fastervit0_budget20min_aoi-256.py'
