# Unlabelled two-light images for self-supervised pretraining: every <stem>_buffer0/1 pair
# below <data_root>/pretrain (any depth). The synthetic benchmark is generated on first use.
# Algorithm configs set the pipeline (MAE: one augmented crop; DINO/iBOT: multi-crop).
pretrain_dataset_type = 'AOIPretrainDataset'
pretrain_data_root = 'data/synthetic_aoi'
pretrain_synthetic_cfg = dict(data_root=pretrain_data_root, seed=0)
pretrain_crop_size = 512
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=pretrain_dataset_type,
        data_root=pretrain_data_root,
        synthetic=pretrain_synthetic_cfg,
        data_prefix='pretrain',
        pipeline=[]))
