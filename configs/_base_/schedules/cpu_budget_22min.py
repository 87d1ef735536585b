# What the CPU recipes share: AdamW without layer-wise decay (they train from scratch; decay
# is a fine-tuning device and would leave the stem at 0.75^17 of the LR), the 22-minute
# budget, the runtime with denser logging and one kept checkpoint. Why: README "CPU recipe".
_base_ = ['./adamw_llrd.py', './budget_22min.py', '../default_runtime.py']
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=1.0))
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=300, max_keep_ckpts=1, save_last=True))
