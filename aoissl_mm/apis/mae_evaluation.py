"""MAE reconstruction loss of checkpoints on held-out images (behind ``tools/mae_loss.py``).

The training log's loss is noisy (a batch of 8 random crops with random masks) and is
measured on the images the encoder trains on, so it cannot tell "still learning" from
"memorising the pretraining set". This scores every checkpoint on the *same* crops of
images it never saw, with the *same* masks: crops and masks are drawn once from a fixed
seed, so two checkpoints differ only by their weights.
"""
import csv
import io
from typing import Dict, List, Optional, Sequence

import torch

from ..utils.atomic_io import atomic_write_text
from ..utils.checkpoint import check_state_dict_matches, extract_state_dict, safe_torch_load
from ..utils.runner_setup import load_config

__all__ = ['heldout_pipeline', 'mae_heldout_loss', 'write_mae_loss_csv']

# training-only randomness that is not part of "the same crops" of a held-out score
_AUGMENTATIONS = ('AOIAugment', )


def heldout_pipeline(train_pipeline: Sequence[dict]) -> List[dict]:
    """The config's MAE training pipeline without its augmentations.

    Args:
        train_pipeline (Sequence[dict]): ``train_dataloader.dataset.pipeline``.

    Returns:
        list[dict]: The same loading, cropping (with its black-crop re-sampling)
        and packing, without ``AOIAugment``.

    Raises:
        ValueError: The pipeline has no ``PackInputs`` (not an MAE pipeline).
    """
    steps = [dict(t) for t in train_pipeline if t.get('type') not in _AUGMENTATIONS]
    if not any(t.get('type') == 'PackInputs' for t in steps):
        raise ValueError(f'not an MAE training pipeline (no PackInputs): '
                         f'{[t.get("type") for t in train_pipeline]}')
    return steps


def _build(cfg) -> torch.nn.Module:
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    return MODELS.build(cfg.model).eval()


def _dataset(cfg, data_root: str, data_prefix: str, crops_per_image: int):
    from mmengine.dataset import ConcatDataset
    from mmpretrain.registry import DATASETS
    one = DATASETS.build(dict(
        type='AOIPretrainDataset', data_root=data_root, data_prefix=data_prefix,
        pipeline=heldout_pipeline(cfg.train_dataloader.dataset.pipeline)))
    return ConcatDataset([one] * crops_per_image) if crops_per_image > 1 else one


@torch.no_grad()
def mae_heldout_loss(config: str,
                     checkpoints: Sequence[str],
                     data_root: str,
                     data_prefix: str = 'images/test',
                     crops_per_image: int = 4,
                     batch_size: int = 8,
                     seed: int = 0,
                     cfg_options: Optional[dict] = None,
                     device: str = 'cpu',
                     progress: bool = True) -> Dict[str, float]:
    """Mean MAE loss of each checkpoint on fixed crops and masks of held-out images.

    Every buffer pair under ``data_root/data_prefix`` (any depth) gives
    ``crops_per_image`` crops through the config's training pipeline without
    augmentation (same crop size and black-crop re-sampling); the model's own
    masking draws the masks. All randomness is re-seeded with ``seed`` before
    each checkpoint, so every checkpoint sees identical crops and masks. The
    loss is the model's (``MaskTokenMAE.loss``: MSE on masked units), averaged
    over crops.

    Args:
        config (str): A ``MaskTokenMAE`` config.
        checkpoints (Sequence[str]): Its checkpoints (loaded weights-only; keys
            and shapes must match the model exactly).
        data_root (str): Root of the held-out images, e.g. the labelled
            benchmark ``data/synthetic_aoi`` (its pretraining set is another
            root).
        data_prefix (str): Folder under ``data_root``. Defaults to
            ``'images/test'``.
        crops_per_image (int): Crops per image. Defaults to 4.
        batch_size (int): Crops per forward pass. Defaults to 8.
        seed (int): Seed of the crops and masks. Defaults to 0.
        cfg_options (dict, optional): Config overrides (checked).
        device (str): Where the model runs. Defaults to ``'cpu'``.
        progress (bool): Progress bar.

    Returns:
        dict: checkpoint path → mean loss, in the given order.

    Raises:
        TypeError: The config's model is not a ``MaskTokenMAE``.
        ValueError: ``crops_per_image`` or ``batch_size`` < 1, no checkpoint,
            or a checkpoint that does not match the model (names the keys).
    """
    from mmengine.runner import Runner
    from mmengine.runner.utils import set_random_seed
    from tqdm import tqdm
    if crops_per_image < 1 or batch_size < 1:
        raise ValueError(f'crops_per_image and batch_size must be >= 1, got '
                         f'{crops_per_image} and {batch_size}')
    if not checkpoints:
        raise ValueError('no checkpoint given')
    if len(set(checkpoints)) != len(checkpoints):
        raise ValueError(f'a checkpoint is given twice: {list(checkpoints)}')
    cfg = load_config(config, cfg_options)
    if cfg.model.get('type') != 'MaskTokenMAE':
        raise TypeError(f'{config}: model type {cfg.model.get("type")!r}; the held-out '
                        f'reconstruction loss needs a MaskTokenMAE config')
    model = _build(cfg).to(device)
    loader = Runner.build_dataloader(dict(
        batch_size=batch_size, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        dataset=_dataset(cfg, data_root, data_prefix, crops_per_image)))
    results = {}
    for ckpt in tqdm(checkpoints, desc='held-out MAE loss', unit='ckpt', disable=not progress):
        state = extract_state_dict(safe_torch_load(ckpt), ckpt)
        check_state_dict_matches(model, state, ckpt)
        model.load_state_dict(state)
        set_random_seed(seed)  # the same crops and masks for every checkpoint
        total, count = 0.0, 0
        for data in loader:
            data = model.data_preprocessor(data, False)
            inputs = data['inputs']
            n = len(inputs[0] if isinstance(inputs, (list, tuple)) else inputs)
            total += float(model.loss(data['inputs'], data['data_samples'])['loss']) * n
            count += n
        results[ckpt] = total / count
    return results


def write_mae_loss_csv(path: str, results: Dict[str, float]) -> None:
    """``checkpoint,heldout_loss`` rows, written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(['checkpoint', 'heldout_loss'])
    for ckpt, loss in results.items():
        writer.writerow([ckpt, f'{loss:.6f}'])
    atomic_write_text(path, buffer.getvalue())
