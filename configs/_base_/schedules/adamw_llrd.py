# AdamW (adamw.py: no decay on norms, biases, tokens, position tables/MLPs) with layer-wise LR
# decay 0.75 (spec §7.3 REC): stem at the deepest decay, one layer id per block, the head at
# the base LR; gradient clipping 5.0. AMP is switched on by tools/train.py when CUDA is present
# (amp_if_cuda in default_runtime.py).
_base_ = ['./adamw.py']
base_lr = 5e-4
optim_wrapper = dict(
    optimizer=dict(lr=base_lr),
    clip_grad=dict(max_norm=5.0, norm_type=2),
    constructor='mmpretrain.LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75))
