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
        num_classes=4,
        out_channels=4,
        class_names=('wire', 'ball', 'wedge', 'epoxy'),
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True,
            loss_name='loss_bce', loss_weight=1.0)))
