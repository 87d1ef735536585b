# ViT-Tiny scratch-vs-DINO (README "Does pretraining help?"): the fixed 757-iteration ViT-Tiny
# CPU recipe started from the DINO CPU checkpoint's teacher backbone (`teacher.backbone.`, the
# EMA weights DINO evaluates; the student is under `backbone.`) with the paper's layer decay
# 0.75. Everything else equals upernet_vit-tiny_757it_aoi-256.py and
# upernet_vit-tiny-maepre_757it_aoi-256.py.
#   python tools/train.py configs/selfsup/dino_vit-tiny_250it_aoi-128.py
#   python tools/train.py configs/upernet/upernet_vit-tiny-dinopre_757it_aoi-256.py
_base_ = ['./upernet_vit-tiny-maepre_757it_aoi-256.py']
model = dict(
    backbone=dict(
        init_cfg=dict(checkpoint='work_dirs/dino_vit-tiny_250it_aoi-128/iter_250.pth',
                      prefix='teacher.backbone.')))
