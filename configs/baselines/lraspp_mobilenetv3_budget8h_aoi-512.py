# Baseline: MobileNetV3-Large (2 input channels, from scratch) + LR-ASPP, multi-label head.
_base_ = [
    '../_base_/models/multilabel_segmentor.py', '../_base_/datasets/aoi_synthetic.py',
    '../_base_/schedules/adamw_cnn.py', '../_base_/schedules/budget_8h.py',
    '../_base_/default_runtime.py'
]
# DDP: every parameter gets a gradient in every iteration (checked), so no search for
# unused ones after each forward (default_runtime.py sets it for the transformers)
find_unused_parameters = False
norm_cfg = dict(type='BN', eps=0.001, requires_grad=True)
model = dict(
    backbone=dict(
        type='MultiChannelMobileNetV3', in_channels=2, arch='large', out_indices=(1, 3, 16),
        norm_cfg=norm_cfg),
    decode_head=dict(
        type='MultiLabelLRASPPHead', in_channels=(16, 24, 960), in_index=(0, 1, 2), channels=128,
        input_transform='multiple_select', num_classes=4, out_channels=4,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU'), align_corners=False,
        loss_decode=_base_.bce_loss))
