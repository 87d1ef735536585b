# DINO / iBOT pretraining schedule (paper protocol, spec §5-6): AdamW (0.9, 0.95), weight decay
# 0.05 (none on norms, biases, tokens and position tables), no gradient clipping (as the
# reference), the learning rate set by the leaf config. The 8-hour TimeBudgetHook drives warm-up
# (5 %) and cosine decay to 1e-7 by elapsed time; the TeacherScheduleHook drives, by the same
# elapsed share, the teacher EMA (momentum 0.996 -> 1, cosine, after every optimiser step), the
# teacher temperature (0.04 -> 0.07 over the first 30 %) and iBOT's patch-loss start.
# max_iters is only an upper bound; there is no validation loop.
_base_ = ['./adamw.py', '../datasets/aoi_retrieval_probe.py']
base_lr = 5e-4
optim_wrapper = dict(optimizer=dict(lr=base_lr))
budget_h = 8.0
train_cfg = dict(type='IterBasedTrainLoop', max_iters=10_000_000)
param_scheduler = []
teacher_schedule = dict(
    type='TeacherScheduleHook', momentum=(0.996, 1.0), teacher_temp=(0.04, 0.07),
    temp_warmup_share=0.3)
custom_hooks = [
    dict(type='TimeBudgetHook', budget_h=budget_h, warmup_share=0.05, min_lr=1e-7),
    teacher_schedule,
    _base_.retrieval_probe,  # quick retrieval mIoU every 1000 iterations
]
