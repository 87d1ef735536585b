# ViT-Tiny scratch-vs-MAE (README "Does pretraining help?"): the fixed 757-iteration ViT-Tiny
# CPU recipe started from the MAE CPU checkpoint with the paper's layer decay 0.75
# (patch embedding at 0.75^7 ≈ 13 % of the LR). Everything else equals
# upernet_vit-tiny_757it_aoi-256.py.
#   python tools/train.py configs/selfsup/mae_vit-tiny_600it_aoi-256.py
#   python tools/train.py configs/upernet/upernet_vit-tiny-maepre_757it_aoi-256.py
_base_ = ['./upernet_vit-tiny_757it_aoi-256.py']
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/mae_vit-tiny_600it_aoi-256/iter_600.pth',
                      prefix='backbone.')))
