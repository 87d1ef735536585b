# Fine-tune ViT-Tiny + multi-label UPerNet from a self-supervised checkpoint (MAE / DINO /
# iBOT), paper protocol; see upernet_fastervit0-sslpre_budget8h_aoi-512.py.
_base_ = ['./upernet_vit-tiny_budget8h_aoi-512.py']
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/ssl/backbone.pth',
                      prefix='backbone.')))
cpu_recipe = 'configs/vit-tiny_upernet_aoi_cpu.py'  # + model.backbone.init_cfg
