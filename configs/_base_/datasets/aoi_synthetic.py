# The embedded synthetic AOI benchmark (generated on first use) in the AOI layout:
#   <data_root>/images/<split>/<stem>_buffer{0,1}.png, <data_root>/labels/<split>/<stem>.png
# Point data_root at your own data in the same layout to train on it unchanged.
dataset_type = 'AOIDataset'
data_root = 'data/synthetic_aoi'
crop_size = (512, 512)
# generated into this root when it has no images/ folder (aoissl_mm.datasets.synthetic);
# a dataset whose data_root is anything else is never generated into
synthetic_cfg = dict(data_root=data_root, seed=0)
train_batch_size = 32

train_pipeline = [
    dict(type='LoadAOIImage'),
    dict(type='LoadMultiLabelAnnotations'),
    dict(type='AOIAugment', n=3, pad_to=crop_size[0]),
    dict(type='PositiveAnchoredRandomCrop', crop_size=crop_size, pos_prob=0.8),
    dict(type='PackMultiLabelSegInputs'),
]
# spec §1.4: zero-pad to >= crop and centre-crop for evaluation
test_pipeline = [
    dict(type='LoadAOIImage'),
    dict(type='LoadMultiLabelAnnotations'),
    dict(type='PadCenterCrop', size=crop_size),
    dict(type='PackMultiLabelSegInputs'),
]
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        synthetic=synthetic_cfg,
        data_prefix=dict(img_path='images/train', seg_map_path='labels/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        synthetic=synthetic_cfg,
        data_prefix=dict(img_path='images/val', seg_map_path='labels/val'),
        pipeline=test_pipeline))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'],
                 data_prefix=dict(img_path='images/test', seg_map_path='labels/test')))
# --tta: identity, horizontal and vertical flip of the evaluation crop; probabilities are
# averaged after flipping back (MultiLabelSegTTAModel). The identity comes first: its
# ground truth is the one evaluated.
tta_model = dict(type='MultiLabelSegTTAModel')
tta_pipeline = [
    dict(type='LoadAOIImage'),
    dict(type='LoadMultiLabelAnnotations'),
    dict(type='PadCenterCrop', size=crop_size),
    dict(
        type='TestTimeAug',
        transforms=[[
            dict(type='RandomFlip', prob=0.0, direction='horizontal'),
            dict(type='RandomFlip', prob=1.0, direction='horizontal'),
            dict(type='RandomFlip', prob=1.0, direction='vertical'),
        ], [dict(type='PackMultiLabelSegInputs')]]),
]
val_evaluator = dict(type='MultiLabelIoUMetric', iou_metrics=['mIoU', 'mDice', 'mFscore'])
test_evaluator = val_evaluator
