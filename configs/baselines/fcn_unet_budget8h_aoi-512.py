# Baseline: U-Net (2 input channels) + FCN classifier, multi-label head.
_base_ = [
    '../_base_/models/multilabel_segmentor.py', '../_base_/datasets/aoi_synthetic.py',
    '../_base_/schedules/adamw_cnn.py', '../_base_/schedules/budget_8h.py',
    '../_base_/default_runtime.py'
]
# DDP: every parameter gets a gradient in every iteration (checked), so no search for
# unused ones after each forward (default_runtime.py sets it for the transformers)
find_unused_parameters = False
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        type='UNet', in_channels=2, base_channels=32, num_stages=5, strides=(1, 1, 1, 1, 1),
        enc_num_convs=(2, 2, 2, 2, 2), dec_num_convs=(2, 2, 2, 2),
        downsamples=(True, True, True, True), enc_dilations=(1, 1, 1, 1, 1),
        dec_dilations=(1, 1, 1, 1), norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'),
        upsample_cfg=dict(type='InterpConv'), norm_eval=False),
    decode_head=dict(
        type='MultiLabelFCNHead', in_channels=32, in_index=4, channels=32, num_convs=1,
        concat_input=False, num_classes=4, out_channels=4,
        norm_cfg=norm_cfg, align_corners=False,
        loss_decode=_base_.bce_loss))
