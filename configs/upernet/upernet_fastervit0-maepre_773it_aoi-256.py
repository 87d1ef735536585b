# The scratch-vs-MAE experiment (README "Does pretraining help?"): the fixed 773-iteration
# FasterViT-0 CPU recipe, started from the MAE CPU checkpoint instead of random weights, with
# the paper's layer-wise LR decay 0.75 (the pretrained early layers move least). Everything
# else (data, crops, batch, LR, loss, schedule) equals upernet_fastervit0_773it_aoi-256.py.
#   python tools/train.py configs/selfsup/mae_fastervit0_279it_aoi-256.py
#   python tools/train.py configs/upernet/upernet_fastervit0-maepre_773it_aoi-256.py
_base_ = ['./upernet_fastervit0_773it_aoi-256.py']
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/mae_fastervit0_279it_aoi-256/iter_279.pth',
                      prefix='backbone.')))
