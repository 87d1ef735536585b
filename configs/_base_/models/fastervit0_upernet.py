# FasterViT-0 (HAT off, 2 channels) + multi-label UPerNet (spec §3, §7.1, §7.2).
_base_ = ['./multilabel_segmentor.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        type='FasterViT',
        arch='0',
        in_channels=2,
        out_indices=(1, 2, 3, 4),
        drop_path_rate=0.2,
        hat=False),
    decode_head=dict(
        type='MultiLabelUPerHead',
        in_channels=[128, 256, 512, 512],
        in_index=[0, 1, 2, 3],
        pool_type='max_aoi',
        pool_scales=(2, 4, 8, 16),
        extra_conv=True,
        channels=256,
        dropout_ratio=0.0,
        # class names come from the dataset (tools fill decode_head.class_names)
        num_classes=4,
        out_channels=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=_base_.bce_loss))
