# MAE pretraining data (spec §1.5): every unlabelled image of <data_root>/pretrain, the AOI
# augmentation policy (pad to 512, SomeOf-3), one uniform 512² crop re-drawn when > 95 % of
# it is black (spec §1.7), packed for mmpretrain. No masks: MaskTokenMAE draws them.
_base_ = ['./aoi_pretrain.py']
pretrain_crop_size = 512
mae_pipeline = [
    dict(type='LoadAOIImage'),
    dict(type='AOIAugment', n=3, pad_to=pretrain_crop_size),
    dict(type='PositiveAnchoredRandomCrop', crop_size=pretrain_crop_size, pos_prob=0.0),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=mae_pipeline))
