"""Refuse to evaluate a checkpoint that does not fit the model."""
import torch.nn as nn

from ..compat import safe_torch_load


def check_checkpoint_matches(model: nn.Module, path: str, max_names: int = 10) -> dict:
    """Load ``path`` weights-only and require its keys and shapes to match ``model``.

    mmengine loads ``load_from`` non-strictly and only warns, so a checkpoint of
    another architecture would silently be evaluated as a partly random model.

    Returns:
        dict: The checkpoint's state dict (``module.`` prefixes removed).

    Raises:
        ValueError: Missing, unexpected or wrong-shape keys, naming them.
    """
    ckpt = safe_torch_load(path)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'checkpoint {path} holds no state dict')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    own = (model.module if hasattr(model, 'module') else model).state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f'{k}: model {tuple(own[k].shape)}, checkpoint {tuple(state[k].shape)}'
                  for k in own if k in state and hasattr(state[k], 'shape')
                  and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        parts = []
        for title, names in (('shape mismatch', mismatched), ('missing in checkpoint', missing),
                             ('not in model', unexpected)):
            if names:
                more = f' (+{len(names) - max_names} more)' if len(names) > max_names else ''
                parts.append(f'{title} [{len(names)}]: ' + '; '.join(names[:max_names]) + more)
        raise ValueError(f'checkpoint {path} does not match the model '
                         f'({type(model).__name__}); is it from another architecture or config? '
                         + ' | '.join(parts))
    return state
