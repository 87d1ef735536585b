# ViT-Tiny (6 x 384, patch 16, 2 channels) + multi-label UPerNet (spec §2, §7.1).
# As in the paper, every pyramid level is the stride-16 map (no neck).
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[45.42, 59.82],
    std=[56.70, 69.03],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=16)
model = dict(
    type='MultiLabelEncoderDecoder',
    data_preprocessor=data_preprocessor,
    threshold=0.5,
    backbone=dict(
        type='AOIViT',
        arch='tiny',
        in_channels=2,
        img_size=512,
        patch_size=16,
        out_indices=(2, 3, 4, 5),
        drop_path_rate=0.0),
    decode_head=dict(
        type='MultiLabelUPerHead',
        in_channels=[384, 384, 384, 384],
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
            loss_name='loss_bce', loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
