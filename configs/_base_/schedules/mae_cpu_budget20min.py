# What the MAE CPU recipes share: the MAE schedule with a 20-minute budget (warm-up 5 % =
# 1 minute, cosine to 1e-7 by elapsed time), and the self-supervised runtime with denser
# logging, a checkpoint every 500 iterations (one kept) and the final one written by
# TimeBudgetHook.
_base_ = ['./mae_adamw_budget8h.py', '../selfsup_runtime.py']
budget_s = 20 * 60
custom_hooks = [
    dict(type='TimeBudgetHook', budget_s=budget_s, warmup_share=0.05, min_lr=1e-7),
    # one quick retrieval mIoU of the final student, after the budget (not counted in it)
    dict(_base_.retrieval_probe, interval=None),
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=500, max_keep_ckpts=1))
