# AdamW with layer-wise LR decay 0.75 (spec §7.3 REC): stem at the deepest decay, one
# layer id per block, the head at the base LR; gradient clipping 5.0. AMP is switched on by
# tools/train.py when CUDA is present (amp_if_cuda in default_runtime.py).
# No weight decay on norms, biases (and every other 1-D tensor), tokens, position tables and
# the MLPs that generate position terms (FasterViT's `pos_mlp` and relative-bias `cpb_mlp`):
# these MLPs are position tables computed from coordinates, and decaying them would pull the
# position terms and relative biases towards constants instead of regularising features
# (Swin-v2 exempts its `cpb_mlp` likewise). `custom_keys` match substrings of parameter
# names and take precedence over the rules above.
base_lr = 5e-4
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=5.0, norm_type=2),
    constructor='mmpretrain.LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.75,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            'cls_token': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.0),
            'mask_token': dict(decay_mult=0.0),
            'pos_mlp': dict(decay_mult=0.0),
            'cpb_mlp': dict(decay_mult=0.0),
        }))
