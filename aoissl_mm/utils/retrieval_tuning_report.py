"""Files and tables of a retrieval hyper-parameter search (``tools/tune_retrieval.py``).

Everything is written atomically (:func:`aoissl_mm.utils.atomic_io.atomic_path`);
no pickle: CSV, JSON, a Python config snippet and a PNG.
"""
import csv
import io
import json
import math
from typing import Dict, List, Sequence

import numpy as np

from ..models.retrieval.tuning import GridPoint, fold_statistics
from .atomic_io import atomic_path, atomic_write_text

__all__ = [
    'atomic_write_text', 'write_json', 'write_results_csv', 'grid_values', 'choose_aggregation',
    'best_model_cfg', 'best_config_text', 'best_table', 'plot_tuning'
]


def _num(value: float) -> object:
    """A float for JSON / CSV: None (JSON null) for NaN, else rounded."""
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def write_json(path: str, payload: Dict) -> None:
    """Write ``payload`` as JSON (NaN as null) atomically."""
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (float, np.floating)):
            return _num(float(v))
        if isinstance(v, np.integer):
            return int(v)
        return v
    atomic_write_text(path, json.dumps(clean(payload), indent=2, allow_nan=False) + '\n')


def write_results_csv(path: str, points: Sequence[GridPoint], ious: np.ndarray,
                      class_names: Sequence[str]) -> None:
    """One row per grid point x class: the point, per-fold IoUs, mean, std, mean - std.

    Args:
        path (str): The CSV file.
        points (Sequence[GridPoint]): G grid points.
        ious (np.ndarray): (G, F, C) IoUs (NaN written as ``nan``).
        class_names (Sequence[str]): C names.
    """
    mean, std = fold_statistics(ious)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    folds = [f'fold_{f}' for f in range(ious.shape[1])]
    writer.writerow(['aggregation', 'k', 'beta', 'threshold', 'class'] + folds +
                    ['mean', 'std', 'mean_minus_std'])

    def fmt(v: float) -> str:
        return 'nan' if not math.isfinite(v) else f'{v:.6f}'

    for g, p in enumerate(points):
        for c, name in enumerate(class_names):
            writer.writerow([p.aggregation, p.k, '' if p.beta is None else p.beta, p.threshold,
                             name] + [fmt(v) for v in ious[g, :, c]] +
                            [fmt(mean[g, c]), fmt(std[g, c]), fmt(mean[g, c] - std[g, c])])
    atomic_write_text(path, buf.getvalue())


def grid_values(points: Sequence[GridPoint]) -> Dict[str, List]:
    """The distinct ks, betas and thresholds of an aggregation's points, in grid order."""
    return dict(ks=list(dict.fromkeys(p.k for p in points)),
                betas=[b for b in dict.fromkeys(p.beta for p in points) if b is not None],
                thresholds=list(dict.fromkeys(p.threshold for p in points)))


def choose_aggregation(best: Dict[str, List[dict]]) -> str:
    """The aggregation whose per-class best means average highest (ties: the first).

    A segmentor has one aggregation for all classes, so with both searched
    the config snippet takes this one; NaN classes are left out of the mean.
    """
    scores = {}
    for name, rows in best.items():
        values = [r['mean'] for r in rows if math.isfinite(r['mean'])]
        scores[name] = float(np.mean(values)) if values else -math.inf
    return max(best, key=lambda n: (scores[n], -list(best).index(n)))


def best_model_cfg(rows: Sequence[dict], aggregation: str) -> Dict:
    """``model`` overrides of the per-class choice: k, threshold (and beta for attention)."""
    cfg = dict(k=[int(r['k']) for r in rows], threshold=[float(r['threshold']) for r in rows])
    if aggregation == 'attention':
        cfg['beta'] = [float(r['beta']) for r in rows]
    cfg['aggregation'] = aggregation
    return cfg


def best_config_text(rows: Sequence[dict], aggregation: str) -> str:
    """A config snippet (``model = dict(...)``) and the equivalent ``--cfg-options``."""
    cfg = best_model_cfg(rows, aggregation)
    classes = ', '.join(r['class'] for r in rows)
    body = ''.join(f'\n    {k}={v!r},' for k, v in cfg.items())
    options = ' '.join(f'model.{k}={v}' if k == 'aggregation' else
                       f"model.{k}=[{','.join(str(x) for x in v)}]" for k, v in cfg.items())
    means = ', '.join('nan' if not math.isfinite(r['mean']) else f"{r['mean']:.4f}"
                      for r in rows)
    return (f'# Per-class retrieval settings chosen by tools/tune_retrieval.py\n'
            f'# (classes: {classes}; best mean-over-folds IoU: {means}).\n'
            f'# Put this in a leaf config, or pass\n'
            f'#   --cfg-options {options}\n'
            f'model = dict({body[:-1]})\n')


def best_table(best: Dict[str, List[dict]], chosen: str) -> str:
    """Per-class table of the best points (prettytable), the chosen aggregation marked."""
    from prettytable import PrettyTable
    table = PrettyTable(['class', 'aggregation', 'k', 'beta', 'threshold', 'mean IoU', 'std',
                         'mean-std', 'chosen'])

    def fmt(v: float) -> str:
        return 'nan' if not math.isfinite(v) else f'{v:.4f}'

    for name, rows in best.items():
        for r in rows:
            table.add_row([r['class'], name, r['k'], '-' if r['beta'] is None else r['beta'],
                           r['threshold'], fmt(r['mean']), fmt(r['std']),
                           fmt(r['mean_minus_std']), '*' if name == chosen else ''])
    return table.get_string()


def plot_tuning(path: str, points: Sequence[GridPoint], ious: np.ndarray,
                best: Dict[str, List[dict]], class_names: Sequence[str]) -> None:
    """Per class: mean IoU vs k at that class's best threshold, a line per aggregation / beta.

    Args:
        path (str): The PNG.
        points (Sequence[GridPoint]): G grid points.
        ious (np.ndarray): (G, F, C) IoUs.
        best (dict): Per aggregation, :func:`select_best` rows.
        class_names (Sequence[str]): C names.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    mean, _ = fold_statistics(ious)
    cols = min(len(class_names), 4)
    rows_n = -(-len(class_names) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.4 * rows_n), squeeze=False)
    for c, name in enumerate(class_names):
        ax = axes[c // cols][c % cols]
        for aggregation, rows in best.items():
            top = rows[c]
            for beta in dict.fromkeys(p.beta for p in points if p.aggregation == aggregation):
                sel = [g for g, p in enumerate(points) if p.aggregation == aggregation
                       and p.beta == beta and p.threshold == top['threshold']]
                sel.sort(key=lambda g: points[g].k)
                label = aggregation if beta is None else f'{aggregation} β={beta:g}'
                ax.plot([points[g].k for g in sel], [mean[g, c] for g in sel], '-o', ms=3,
                        label=f"{label} (t={top['threshold']:g})")
            if math.isfinite(top['mean']):
                ax.plot([top['k']], [top['mean']], 'k*', ms=11)
        ax.set(title=name, xlabel='k', ylabel='mean IoU over folds')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for c in range(len(class_names), rows_n * cols):
        axes[c // cols][c % cols].axis('off')
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
