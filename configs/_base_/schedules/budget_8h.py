# The paper's protocol: every model gets the same wall-clock budget (8 h). The
# TimeBudgetHook drives warm-up (5 % of the budget = 5 of 100 epochs) and cosine decay
# to 5e-7 by the elapsed share of the budget and stops training when it is spent, so
# every run ends annealed. max_iters is only an upper bound. The budget counts training time
# only: each validation (every val_interval iterations, and a final one) comes on top, and
# the log says how long each took. The log's ETA is the training time left in the budget.
budget_h = 8.0
train_cfg = dict(type='IterBasedTrainLoop', max_iters=10_000_000, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = []
custom_hooks = [
    dict(type='TimeBudgetHook', budget_h=budget_h, warmup_share=0.05, min_lr=5e-7),
]
