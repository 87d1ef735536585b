# MAE with learnable mask tokens, ViT-Tiny, the paper's protocol: 512² crops, batch 100,
# mask ratio 0.75, AdamW LR 1.5e-4, 8-hour budget. Fine-tune from its final checkpoint:
#   python tools/train.py configs/upernet/upernet_vit-tiny-sslpre_budget8h_aoi-512.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=$(cat \
#           work_dirs/mae_vit-tiny_budget8h_aoi-512/last_checkpoint)
_base_ = [
    '../_base_/models/mae_vit-tiny.py', '../_base_/datasets/aoi_pretrain_mae.py',
    '../_base_/schedules/mae_adamw_budget8h.py', '../_base_/selfsup_runtime.py'
]
train_dataloader = dict(batch_size=100)
cpu_recipe = 'configs/selfsup/mae_vit-tiny_budget20min_aoi-256.py'
