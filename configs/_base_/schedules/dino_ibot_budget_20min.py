# The DINO / iBOT CPU recipes' schedule: the 8-hour schedule's optimiser and teacher schedules
# over a 20-minute budget (the shares, not iteration counts, drive them), denser logging and one
# kept checkpoint (plus the final one the TimeBudgetHook writes).
_base_ = ['./dino_ibot_budget_8h.py']
budget_s = 20 * 60
custom_hooks = [
    dict(type='TimeBudgetHook', budget_s=budget_s, warmup_share=0.05, min_lr=1e-7),
    _base_.teacher_schedule,
]
