# Fine-tune ViT-Tiny from a self-supervised checkpoint (MAE / DINO / iBOT), see
# fastervit0_upernet_aoi_from_ssl.py.
_base_ = ['./vit-tiny_upernet_aoi.py']
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/ssl/backbone.pth',
                      prefix='backbone.')))
