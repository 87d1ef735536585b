# A 22-minute time budget (the CPU recipes): the 8-hour schedule's warm-up 5 % + cosine to
# 5e-7 by elapsed time, validation every 300 iterations.
_base_ = ['./budget_8h.py']
budget_s = 22 * 60
train_cfg = dict(val_interval=300)
custom_hooks = [dict(type='TimeBudgetHook', budget_s=budget_s, warmup_share=0.05, min_lr=5e-7)]
