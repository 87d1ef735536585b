# Baseline: ResNet-18 (2 input channels, from scratch) + DeepLabV3+ with a multi-label head.
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
        type='ResNetV1c', depth=18, in_channels=2, num_stages=4, out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg, norm_eval=False,
        style='pytorch', contract_dilation=True),
    decode_head=dict(
        type='MultiLabelDepthwiseSeparableASPPHead', in_channels=512, in_index=3, channels=128,
        dilations=(1, 12, 24, 36), c1_in_channels=64, c1_channels=48, num_classes=4,
        out_channels=4, norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=_base_.bce_loss))
