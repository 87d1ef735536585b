# Fine-tune from a self-supervised checkpoint (MAE / iBOT): the backbone weights are loaded
# weights-only; the log says how many backbone tensors were loaded, and none matching is an error.
#   python tools/train.py configs/fastervit0_upernet_aoi_from_ssl.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/mae_fastervit0/epoch_100.pth
_base_ = ['./fastervit0_upernet_aoi.py']
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/ssl/backbone.pth',
                      prefix='backbone.')))
