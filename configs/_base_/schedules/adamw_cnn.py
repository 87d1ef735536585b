# CNN baselines (spec §10): AdamW, LR 1e-3, weight decay 0.05 except norms and biases,
# gradient clipping 5.0; no layer-wise decay (the reference's "inverted" decay is not used).
base_lr = 1e-3
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=5.0, norm_type=2),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
