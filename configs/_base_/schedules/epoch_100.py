# Epoch-based alternative (spec §7.3): 5 linear warm-up epochs, then cosine to 5e-7,
# validation every 3 epochs. Epochs need a finite sampler.
train_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=True))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=3)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.2, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=5e-7, by_epoch=True, begin=5, end=100,
         convert_to_iter_based=True),
]
