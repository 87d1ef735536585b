# The synthetic AOI benchmark with 256² training crops and one data worker (the CPU
# recipes). Evaluation is unchanged: the 512² centre crops of aoi_synthetic.py.
_base_ = ['./aoi_synthetic.py']
crop_size = (256, 256)
train_pipeline = [
    dict(type='LoadAOIImage'),
    dict(type='LoadMultiLabelAnnotations'),
    dict(type='AOIAugment', n=3, pad_to=crop_size[0]),
    dict(type='PositiveAnchoredRandomCrop', crop_size=crop_size, pos_prob=0.8),
    dict(type='PackMultiLabelSegInputs'),
]
train_dataloader = dict(batch_size=4, num_workers=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1)
test_dataloader = dict(num_workers=1)
