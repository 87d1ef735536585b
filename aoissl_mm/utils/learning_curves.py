"""Plot the learning curve of a run from mmengine's ``scalars.json``."""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional

from .atomic_io import atomic_path


def find_scalars(work_dir: str) -> str:
    """The newest ``<work_dir>/<timestamp>/vis_data/scalars.json``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir} (is it an mmengine '
                                f'work dir with LocalVisBackend?)')
    return files[-1]


def read_scalars(path: str) -> Dict[str, List[dict]]:
    """Split mmengine's scalar log into training and validation records."""
    train, val = [], []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            (val if 'mIoU' in rec else train).append(rec)
    return dict(train=train, val=val)


def plot_learning_curves(work_dir: str, out: Optional[str] = None) -> str:
    """Training loss, learning rate and validation IoU per class vs iteration (PNG).

    Args:
        work_dir (str): The run's work dir (or a ``scalars.json`` path).
        out (str, optional): Output PNG; default ``<work_dir>/learning_curves.png``.

    Returns:
        str: The PNG path.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    path = work_dir if work_dir.endswith('.json') else find_scalars(work_dir)
    data = read_scalars(path)
    if not data['train']:
        raise ValueError(f'{path} holds no training records')
    out = out or osp.join(work_dir if osp.isdir(work_dir) else osp.dirname(path),
                          'learning_curves.png')
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    it = [r['step'] for r in data['train']]
    axes[0].plot(it, [r['loss'] for r in data['train']])
    axes[0].set(title='training loss', xlabel='iteration', yscale='log')
    axes[1].plot(it, [r['lr'] for r in data['train']])
    axes[1].set(title='learning rate (head group)', xlabel='iteration')
    if data['val']:
        vit = [r['step'] for r in data['val']]
        axes[2].plot(vit, [r['mIoU'] for r in data['val']], 'k-o', label='mIoU')
        keys = sorted({k for r in data['val'] for k in r if k.startswith('IoU.')})
        for k in keys:
            axes[2].plot(vit, [r.get(k, float('nan')) for r in data['val']], '-o', label=k[4:])
        axes[2].legend()
    axes[2].set(title='validation IoU (%)', xlabel='iteration')
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return out
