# MAE pretraining schedule (spec §4.5, paper protocol): AdamW (0.9, 0.95), weight decay 0.05,
# absolute LR 1.5e-4 (no batch-size scaling), gradient clipping 5.0, an 8-hour budget with
# linear warm-up (100 of the paper's 3000 epochs = 1/30 of the budget) and cosine decay to
# 1e-7 driven by elapsed time (TimeBudgetHook, which also stops the run and saves the final
# model; max_iters is only an upper bound). AMP is switched on by tools/train.py when CUDA is
# present (amp_if_cuda in selfsup_runtime.py). No validation loop: SSL has no labels here.
# Unlike the reference (decay on every tensor), the weight-decay exemptions of adamw.py apply.
_base_ = ['./adamw.py', '../datasets/aoi_retrieval_probe.py']
base_lr = 1.5e-4
optim_wrapper = dict(optimizer=dict(lr=base_lr), clip_grad=dict(max_norm=5.0, norm_type=2))
budget_h = 8.0
train_cfg = dict(type='IterBasedTrainLoop', max_iters=10_000_000)
val_cfg = None
test_cfg = None
param_scheduler = []
custom_hooks = [
    dict(type='TimeBudgetHook', budget_h=budget_h, warmup_share=100 / 3000, min_lr=1e-7),
    _base_.retrieval_probe,  # quick retrieval mIoU every 1000 iterations
]
