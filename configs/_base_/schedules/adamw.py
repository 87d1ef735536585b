# AdamW (0.9, 0.95), weight decay 0.05, shared by fine-tuning (adamw_llrd.py adds layer-wise
# decay and clipping) and self-supervised pretraining (mae_adamw_budget8h.py,
# dino_ibot_budget_8h.py). No weight decay on norms, biases (and every other 1-D tensor),
# tokens, position tables and the MLPs that generate position terms (FasterViT's `pos_mlp` and
# relative-bias `cpb_mlp`): these MLPs are position tables computed from coordinates, and
# decaying them would pull the position terms and relative biases towards constants instead of
# regularising features (Swin-v2 exempts its `cpb_mlp` likewise); decaying the mask tokens
# would pull them towards "no token". `custom_keys` match substrings of parameter names and
# take precedence over the rules above. Leaves set the learning rate.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.95), weight_decay=0.05),
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
