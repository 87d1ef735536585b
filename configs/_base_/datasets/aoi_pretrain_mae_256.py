# MAE data for the CPU recipes: 256² crops, one worker, and a larger unlabelled set than the
# benchmark's 60 images (those overfit within minutes): 600 synthetic images of the same
# 6 device families (seed 0; no labelled split), generated once into their own root on first
# use (data/synthetic_aoi is left as it is). Its first 60 images are the benchmark's own.
_base_ = ['./aoi_pretrain_mae.py']
pretrain_crop_size = 256
pretrain_data_root = 'data/synthetic_aoi_pretrain'
pretrain_synthetic_cfg = dict(
    data_root=pretrain_data_root, seed=0, num_train=0, num_val=0, num_test=0, num_pretrain=600)
mae_pipeline = [
    dict(type='LoadAOIImage'),
    dict(type='AOIAugment', n=3, pad_to=pretrain_crop_size),
    dict(type='PositiveAnchoredRandomCrop', crop_size=pretrain_crop_size, pos_prob=0.0),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=pretrain_data_root, synthetic=pretrain_synthetic_cfg, pipeline=mae_pipeline))
