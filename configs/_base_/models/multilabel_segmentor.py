# The multi-label segmentor shared by every model config: 2-channel Z-score (spec §1.3 set A
# in 0-255 units; tools/aoi_stats.py computes them for your data), sigmoid >= 0.5 per class.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[45.42, 59.82],
    std=[56.70, 69.03],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=32)
model = dict(
    type='MultiLabelEncoderDecoder',
    data_preprocessor=data_preprocessor,
    threshold=0.5,
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# Loss choices of the multi-label heads: class-wise BCE (the paper's) and BCE + soft Dice
# (paper Table 8; the CPU recipes use it, see README "CPU recipe").
bce_loss = dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True,
                loss_name='loss_bce', loss_weight=1.0)
bce_dice_loss = [bce_loss, dict(type='MultiLabelDiceLoss', loss_name='loss_dice', loss_weight=1.0)]
