# MAE pretraining schedule (spec §4.5, paper protocol): AdamW (0.9, 0.95), weight decay 0.05,
# absolute LR 1.5e-4 (no batch-size scaling), gradient clipping 5.0, an 8-hour budget with
# linear warm-up (100 of the paper's 3000 epochs = 1/30 of the budget) and cosine decay to
# 1e-7 driven by elapsed time (TimeBudgetHook, which also stops the run and saves the final
# model; max_iters is only an upper bound). AMP is switched on by tools/train.py when CUDA is
# present (amp_if_cuda in selfsup_runtime.py). No validation loop: SSL has no labels here.
# Unlike the reference (decay on every tensor), norms, biases, tokens and position tables /
# position MLPs are not decayed, as in the fine-tuning schedule (adamw_llrd.py): decaying the
# mask tokens would pull them towards zero, i.e. towards "no token".
base_lr = 1.5e-4
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=5.0, norm_type=2),
    paramwise_cfg=dict(
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
budget_h = 8.0
train_cfg = dict(type='IterBasedTrainLoop', max_iters=10_000_000)
val_cfg = None
test_cfg = None
param_scheduler = []
custom_hooks = [
    dict(type='TimeBudgetHook', budget_h=budget_h, warmup_share=100 / 3000, min_lr=1e-7),
]
