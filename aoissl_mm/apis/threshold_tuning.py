"""Per-class decision thresholds of a fine-tuned segmentor, chosen on a labelled split
(behind ``tools/tune_thresholds.py``).

A class trained with a positive weight (``MultiLabelBCELoss(class_weight=...)``) has
inflated probabilities: at the default 0.5 it over-predicts. One pass over a labelled split
gives, for every class and every threshold of a grid, the dataset-level true positives,
false positives and false negatives (the areas ``MultiLabelIoUMetric`` sums), hence the IoU
each threshold would score, without a second forward pass.
"""
import csv
import io
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from ..utils.atomic_io import atomic_path, atomic_write_text
from ..utils.retrieval_tuning_report import write_json
from ..utils.runner_setup import check_dataset_classes, load_config

__all__ = ['default_threshold_grid', 'threshold_counts', 'tune_thresholds']


def default_threshold_grid() -> np.ndarray:
    """0.05, 0.10, …, 0.95 (19 thresholds)."""
    return np.round(np.arange(1, 20) * 0.05, 2)


def threshold_counts(scores: torch.Tensor, gt: torch.Tensor,
                     grid: Sequence[float]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives of every class at every threshold.

    A pixel is predicted positive for class ``c`` at threshold ``t`` when
    ``scores[c] >= t`` (the rule of ``MultiLabelEncoderDecoder``). Ground-truth
    values other than 0 and 1 (e.g. 255 = padding) are ignored.

    Args:
        scores (Tensor): Probabilities (C, H, W).
        gt (Tensor): Multi-hot ground truth (C, H, W).
        grid (Sequence[float]): Thresholds, ascending.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``tp``, ``fp``, ``fn``,
        int64 arrays of shape (C, len(grid)).

    Raises:
        ValueError: Shapes differ, or the grid is not strictly ascending.
    """
    if tuple(scores.shape) != tuple(gt.shape) or scores.dim() != 3:
        raise ValueError(f'scores {tuple(scores.shape)} and gt {tuple(gt.shape)} must both be '
                         '(C, H, W)')
    thresholds = np.asarray(grid, dtype=np.float64)
    if thresholds.ndim != 1 or not len(thresholds) or np.any(np.diff(thresholds) <= 0):
        raise ValueError(f'the threshold grid must be strictly ascending, got {list(grid)}')
    num_classes, num_t = scores.shape[0], len(thresholds)
    tp, fp, fn = (np.zeros((num_classes, num_t), np.int64) for _ in range(3))
    for c in range(num_classes):
        s = scores[c].detach().double().cpu().numpy().ravel()
        g = gt[c].cpu().numpy().ravel()
        for value, out in ((1, tp), (0, fp)):
            # number of thresholds <= score: the pixel is positive at those thresholds
            index = np.searchsorted(thresholds, s[g == value], side='right')
            hist = np.bincount(index, minlength=num_t + 1)
            out[c] = np.cumsum(hist[::-1])[::-1][1:]  # pixels with index > j, j = 0..T-1
        fn[c] = int((g == 1).sum()) - tp[c]
    return tp, fp, fn


def _iou(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = tp + fp + fn
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(denominator > 0, tp / np.maximum(denominator, 1), np.nan)


def _plot(path: str, grid: np.ndarray, iou: np.ndarray, classes: Sequence[str],
          chosen: Sequence[float], current: Sequence[float]) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for c, name in enumerate(classes):
        line, = ax.plot(grid, 100 * iou[c], '-o', ms=3, label=name)
        ax.axvline(chosen[c], color=line.get_color(), ls=':', alpha=0.7)
    ax.set(xlabel='threshold (score >= t)', ylabel='IoU (%)',
           title=f'IoU per class and threshold (dotted: chosen; config: {list(current)})')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format='png')
    plt.close(fig)


@torch.no_grad()
def tune_thresholds(config: str,
                    checkpoint: str,
                    out_dir: str,
                    split: str = 'val',
                    grid: Optional[Sequence[float]] = None,
                    cfg_options: Optional[dict] = None,
                    device: str = 'cpu',
                    progress: bool = True) -> Dict:
    """Pick each class's threshold that maximises its dataset-level IoU on a labelled split.

    Tune on the validation split and report on the test split (``tools/test.py
    --cfg-options model.threshold=[...]``), not on the images you tuned on.

    Args:
        config (str): A fine-tuned segmentor config (``MultiLabelEncoderDecoder``).
        checkpoint (str): Its checkpoint (loaded weights-only, strictly).
        out_dir (str): Where ``thresholds.csv``, ``best.json`` and
            ``thresholds.png`` are written (atomically).
        split (str): ``'val'`` (default) or ``'test'``: which dataloader of the
            config gives the labelled images.
        grid (Sequence[float], optional): Thresholds; default 0.05…0.95 by 0.05.
        cfg_options (dict, optional): Config overrides (checked).
        device (str): Where the model runs. Defaults to ``'cpu'``.
        progress (bool): Progress bar.

    Returns:
        dict: The ``best.json`` payload (``thresholds``, per-class IoU at the
        chosen and at the config's thresholds) plus ``table`` (text).

    Raises:
        TypeError: The config's model is a retrieval segmentor (use
            ``tools/tune_retrieval.py``, which tunes k and thresholds by CV).
        ValueError: Unknown split, or an empty split.
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from tqdm import tqdm

    from .inferencer import AOIInferencer
    if split not in ('val', 'test'):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if cfg.model.get('type') == 'RetrievalSegmentor':
        raise TypeError(f'{config}: a RetrievalSegmentor config; tune its k and thresholds with '
                        'tools/tune_retrieval.py (cross-validated on its memory images)')
    check_dataset_classes(cfg, fill_class_names=True)
    model = AOIInferencer._build_segmentor(cfg, config, checkpoint).to(device).eval()
    thresholds = np.asarray(default_threshold_grid() if grid is None else grid, np.float64)
    loader = Runner.build_dataloader(cfg[f'{split}_dataloader'])
    if len(loader.dataset) == 0:
        raise ValueError(f'{config}: the {split} split has no images')
    classes = list(loader.dataset.metainfo['classes'])
    counts = None
    for data in tqdm(loader, desc=f'scoring the {split} split', unit='batch',
                     disable=not progress):
        data = model.data_preprocessor(data, False)
        for sample in model.predict(data['inputs'], data['data_samples']):
            gt = sample.gt_sem_seg.data
            scores = sample.seg_logits.data
            if tuple(gt.shape) != tuple(scores.shape):
                raise ValueError(f"{sample.metainfo.get('img_path')}: prediction "
                                 f'{tuple(scores.shape)} and label {tuple(gt.shape)} differ')
            batch = threshold_counts(scores, gt, thresholds)
            counts = batch if counts is None else tuple(a + b for a, b in zip(counts, batch))
    tp, fp, fn = counts
    iou = _iou(tp, fp, fn)
    current = [float(t) for t in np.broadcast_to(np.asarray(model.thresholds, np.float64),
                                                  (len(classes),))]
    best_index = [int(np.nanargmax(row)) if np.isfinite(row).any() else
                  int(np.argmin(np.abs(thresholds - current[c]))) for c, row in enumerate(iou)]
    chosen = [float(thresholds[i]) for i in best_index]
    # IoU at the config's own thresholds, counted exactly (they may be off the grid)
    at_current = []
    for c, t in enumerate(current):
        j = np.flatnonzero(np.isclose(thresholds, t))
        at_current.append(float(iou[c, j[0]]) if len(j) else float('nan'))

    os.makedirs(out_dir, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(['threshold'] + [f'IoU.{c}' for c in classes])
    for j, t in enumerate(thresholds):
        writer.writerow([f'{t:g}'] + [f'{100 * iou[c, j]:.2f}' for c in range(len(classes))])
    atomic_write_text(os.path.join(out_dir, 'thresholds.csv'), buffer.getvalue())
    payload = dict(config=config, checkpoint=checkpoint, split=split,
                   num_images=len(loader.dataset), classes=classes,
                   grid=[float(t) for t in thresholds], thresholds=chosen,
                   iou_at_chosen={c: round(100 * float(iou[i, best_index[i]]), 2)
                                  for i, c in enumerate(classes)},
                   config_thresholds=current,
                   iou_at_config={c: round(100 * v, 2) for c, v in zip(classes, at_current)},
                   cfg_options=f"model.threshold=[{','.join(f'{t:g}' for t in chosen)}]",
                   infer_option=f"--thresholds {','.join(f'{t:g}' for t in chosen)}")
    write_json(os.path.join(out_dir, 'best.json'), payload)  # NaN (class absent) as null
    _plot(os.path.join(out_dir, 'thresholds.png'), thresholds, iou, classes, chosen, current)
    rows = [f"{'class':<10}{'threshold':>10}{'IoU %':>9}{'at config':>11}"]
    for i, c in enumerate(classes):
        rows.append(f'{c:<10}{chosen[i]:>10g}{payload["iou_at_chosen"][c]:>9.2f}'
                    f'{payload["iou_at_config"][c]:>11.2f}')
    return dict(payload, table='\n'.join(rows))
