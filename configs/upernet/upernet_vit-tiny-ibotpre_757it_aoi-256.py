# ViT-Tiny scratch-vs-iBOT (README "Does pretraining help?"): the fixed 757-iteration ViT-Tiny
# CPU recipe started from the iBOT CPU checkpoint's teacher backbone (`teacher.backbone.`) with
# the paper's layer decay 0.75. Everything else equals upernet_vit-tiny_757it_aoi-256.py.
#   python tools/train.py configs/selfsup/ibot_vit-tiny_250it_aoi-128.py
#   python tools/train.py configs/upernet/upernet_vit-tiny-ibotpre_757it_aoi-256.py
_base_ = ['./upernet_vit-tiny-dinopre_757it_aoi-256.py']
model = dict(
    backbone=dict(
        init_cfg=dict(checkpoint='work_dirs/ibot_vit-tiny_250it_aoi-128/iter_250.pth')))
