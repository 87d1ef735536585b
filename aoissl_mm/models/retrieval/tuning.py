"""Per-class k / threshold / beta search by K-fold cross-validation (AOI-SSL spec §8.4).

The labelled training images are split into K folds (sklearn's
``KFold(n_splits=K, shuffle=True, random_state=42)``, re-implemented with
numpy by :func:`kfold_splits`). For each fold, a memory is built from the other
folds' images and the held-out images are labelled with every point of a grid;
per class, the point with the best mean-over-folds IoU is kept
(:func:`select_best`).

Work is shared as far as the maths allows:

* the keys of every image are computed once (:class:`TuningData`; the
  backbone is frozen), each fold's memory is filled from them;
* per fold, one search at the largest k serves every smaller k (neighbours
  come sorted by (-similarity, id), so the first k of a top-K are the top-k);
* scores per (k, beta) are computed once (with
  :func:`~.aggregation.aggregate_neighbours`, the segmentor's own code) and
  thresholded for every threshold;
* IoU is dataset-level (spec §8.5 REC): intersections and unions of a class
  are summed over the held-out fold's pixels, then divided.

Grid order (for ties: the first point wins): aggregations in the order given,
then ``itertools.product(thresholds, betas, ks)``.

No mmseg and no Runner here: the keys and labels come from
:func:`aoissl_mm.apis.retrieval_tuning.extract_tuning_data`.
"""
import itertools
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .aggregation import AGGREGATIONS, aggregate_neighbours
from .patch_memory import PatchMemory
from .patch_sampling import sample_patches

__all__ = [
    'DEFAULT_GRIDS', 'IGNORE', 'GridPoint', 'TuningData', 'CVResult', 'kfold_splits', 'make_grid',
    'evaluate_fold', 'cross_validate', 'fold_statistics', 'select_best'
]

IGNORE = 255  # ground-truth value ignored by the IoU (padding), as in MultiLabelIoUMetric

#: Spec §8.4 grids.
DEFAULT_GRIDS: Dict[str, Dict[str, Tuple]] = dict(
    attention=dict(thresholds=(0.5, 0.2, 0.1, 0.05, 0.01), betas=(0.3, 0.15, 0.1, 0.02, 0.002),
                   ks=(2, 10, 20, 30, 50)),
    similarity=dict(thresholds=(0.5, 0.2, 0.1, 0.05, 0.01), betas=(None, ), ks=(2, 4, 6, 10, 20,
                                                                                30)))


class GridPoint(NamedTuple):
    """One evaluated setting; ``beta`` is None for similarity aggregation."""
    aggregation: str
    k: int
    beta: Optional[float]
    threshold: float


@dataclass
class TuningData:
    """Cached keys and raw labels of the tuning images (one or many entries per image).

    Attributes:
        keys (Tensor): (T, D) float32 keys of all entries, image after image.
        labels (Tensor): (T, U, C) uint8 ground truth of each entry's U units
            (p*p pixels of a patch, or H*W of an image), values 0, 1 or
            :data:`IGNORE` (padding: background in a memory, ignored by the IoU).
        offsets (np.ndarray): (N + 1,) entries of image i are
            ``offsets[i]:offsets[i + 1]``.
        names (list[str]): Image names (for messages).
    """
    keys: Tensor
    labels: Tensor
    offsets: np.ndarray
    names: List[str] = field(default_factory=list)

    @property
    def num_images(self) -> int:
        """Number of images."""
        return len(self.offsets) - 1

    def rows(self, images: Sequence[int]) -> Tensor:
        """Entry indices of the given images, in that order."""
        parts = [torch.arange(int(self.offsets[i]), int(self.offsets[i + 1])) for i in images]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


@dataclass
class CVResult:
    """Cross-validation output: IoU per grid point, fold and class (NaN: undefined / skipped)."""
    points: List[GridPoint]
    ious: np.ndarray  # (G, F, C)
    folds: List[Tuple[np.ndarray, np.ndarray]]
    notes: List[str] = field(default_factory=list)


def kfold_splits(num_items: int, n_splits: int = 5, shuffle: bool = True,
                 random_state: Optional[int] = 42) -> List[Tuple[np.ndarray, np.ndarray]]:
    """(train, test) index arrays of sklearn's ``KFold(n_splits, shuffle, random_state)``.

    As sklearn: the indices are shuffled with ``np.random.RandomState(seed)``;
    the first ``num_items % n_splits`` folds get one item more; both arrays are
    returned sorted ascending.

    Args:
        num_items (int): Number of items (images).
        n_splits (int): Folds, >= 2. Defaults to 5.
        shuffle (bool): Shuffle before splitting. Defaults to True.
        random_state (int, optional): Seed of the shuffle. Defaults to 42.

    Returns:
        list[tuple[np.ndarray, np.ndarray]]: One (train, test) pair per fold.

    Raises:
        ValueError: ``n_splits < 2`` or fewer items than folds.
    """
    if int(n_splits) < 2:
        raise ValueError(f'--folds must be >= 2, got {n_splits}')
    if num_items < n_splits:
        raise ValueError(f'{n_splits}-fold cross-validation needs at least {n_splits} images, '
                         f'got {num_items}; lower --folds or add labelled images')
    order = np.arange(num_items)
    if shuffle:
        np.random.RandomState(random_state).shuffle(order)
    sizes = np.full(n_splits, num_items // n_splits, dtype=np.int64)
    sizes[:num_items % n_splits] += 1
    splits, start = [], 0
    for size in sizes:
        test = np.zeros(num_items, dtype=bool)
        test[order[start:start + size]] = True
        splits.append((np.nonzero(~test)[0], np.nonzero(test)[0]))
        start += size
    return splits


def make_grid(aggregation: str, ks: Optional[Sequence[int]] = None,
              betas: Optional[Sequence[float]] = None,
              thresholds: Optional[Sequence[float]] = None) -> List[GridPoint]:
    """The grid points of one aggregation, spec §8.4 values where not given.

    Args:
        aggregation (str): ``'similarity'`` or ``'attention'``.
        ks (Sequence[int], optional): Neighbour counts (>= 1).
        betas (Sequence[float], optional): Attention temperatures (> 0);
            ignored for similarity.
        thresholds (Sequence[float], optional): Score thresholds in (0, 1).

    Returns:
        list[GridPoint]: ``product(thresholds, betas, ks)`` in that order.

    Raises:
        ValueError: An unknown aggregation, an empty grid or invalid values.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f'--aggregation must be one of {AGGREGATIONS} (or both), got '
                         f'{aggregation!r}')
    default = DEFAULT_GRIDS[aggregation]
    ks = list(default['ks'] if ks is None else ks)
    thresholds = list(default['thresholds'] if thresholds is None else thresholds)
    betas = [None] if aggregation == 'similarity' else list(
        default['betas'] if betas is None else betas)
    for name, values in (('ks', ks), ('betas', betas), ('thresholds', thresholds)):
        if not values:
            raise ValueError(f'the {aggregation} grid is empty: --{name} has no values')
    if any(isinstance(k, bool) or int(k) != k or k < 1 for k in ks):
        raise ValueError(f'--ks must be integers >= 1, got {ks}')
    if aggregation == 'attention' and any(not b > 0 for b in betas):
        raise ValueError(f'--betas must be > 0, got {betas}')
    if any(not 0 < t < 1 for t in thresholds):
        raise ValueError(f'--thresholds must lie strictly inside (0, 1), got {thresholds}')
    return [GridPoint(aggregation, int(k), None if b is None else float(b), float(t))
            for t, b, k in itertools.product(thresholds, betas, ks)]


def _fold_memory(data: TuningData, images: Sequence[int], options: dict,
                 sampling: Optional[dict]) -> PatchMemory:
    """A memory of the given images' cached entries, filled as ``build_memory`` fills one."""
    units, classes = data.labels.shape[1:]
    memory = PatchMemory(key_dim=data.keys.shape[1], value_shape=(units, classes), **options)
    generator = None
    if sampling is not None:
        generator = torch.Generator().manual_seed(int(sampling.get('seed', 0)))
    for i in images:
        rows = slice(int(data.offsets[i]), int(data.offsets[i + 1]))
        keys, values = data.keys[rows], (data.labels[rows] == 1).to(torch.uint8)
        if sampling is not None:
            keep = sample_patches(values, int(sampling['per_image']), generator)
            keys, values = keys[keep], values[keep]
        memory.add(keys, values)
    return memory


def evaluate_fold(memory: PatchMemory, query_keys: Tensor, query_labels: Tensor,
                  points: Sequence[GridPoint], similarity_mode: str = 'inverse_distance',
                  chunk: int = 2048, progress=None) -> Tuple[np.ndarray, np.ndarray]:
    """Per-class intersections and unions of every grid point on one set of queries.

    Args:
        memory (PatchMemory): The fold's memory.
        query_keys (Tensor): (M, D) keys of the held-out entries.
        query_labels (Tensor): (M, U, C) uint8 labels (0, 1, :data:`IGNORE`).
        points (Sequence[GridPoint]): Points whose k fits the memory.
        similarity_mode (str): As :class:`RetrievalSegmentor`'s.
        chunk (int): Queries searched and aggregated at once.
        progress (tqdm, optional): Advanced by one per point over the queries.

    Returns:
        tuple[np.ndarray, np.ndarray]: (G, C) float64 intersections and unions.
    """
    num_classes = query_labels.shape[2]
    inter = np.zeros((len(points), num_classes))
    union = np.zeros((len(points), num_classes))
    if not points:
        return inter, union
    k_max = max(p.k for p in points)
    groups: Dict[Tuple[str, int, Optional[float]], List[int]] = {}
    for g, p in enumerate(points):
        groups.setdefault((p.aggregation, p.k, p.beta), []).append(g)
    total = max(query_keys.shape[0], 1)
    for start in range(0, query_keys.shape[0], chunk):
        sims, ids = memory.search(query_keys[start:start + chunk], k_max)
        values = memory.gather_values(ids)
        labels = query_labels[start:start + chunk]
        valid, gt = labels != IGNORE, labels == 1
        gt_area = gt.sum(dim=(0, 1)).double().numpy()
        for (aggregation, k, beta), rows in groups.items():
            scores = aggregate_neighbours(sims[:, :k], values[:, :k], k, aggregation,
                                          beta, similarity_mode)
            thr = torch.tensor([points[g].threshold for g in rows], dtype=scores.dtype)
            pred = (scores[None] > thr.view(-1, 1, 1, 1)) & valid[None]
            tp = (pred & gt[None]).sum(dim=(1, 2)).double().numpy()
            inter[rows] += tp
            union[rows] += pred.sum(dim=(1, 2)).double().numpy() + gt_area[None] - tp
            if progress is not None:
                progress.update(len(rows) * labels.shape[0] / total)
    return inter, union


def cross_validate(data: TuningData, points: Sequence[GridPoint], n_splits: int = 5,
                   random_state: int = 42, memory_options: Optional[dict] = None,
                   memory_sampling: Optional[dict] = None,
                   similarity_mode: str = 'inverse_distance', chunk: int = 2048,
                   progress: bool = True) -> CVResult:
    """IoU of every grid point, fold and class.

    Args:
        data (TuningData): Cached keys and labels of the tuning images.
        points (Sequence[GridPoint]): The grid (see :func:`make_grid`).
        n_splits (int): Folds. Defaults to 5.
        random_state (int): KFold shuffle seed. Defaults to 42.
        memory_options (dict, optional): :class:`PatchMemory` options (the
            segmentor's ``memory`` config).
        memory_sampling (dict, optional): The segmentor's
            ``memory_sampling`` (``dict(per_image=N, seed=0)``), applied to
            each fold's memory images.
        similarity_mode (str): ``'inverse_distance'`` or ``'normalized'``.
        chunk (int): Queries at once. Defaults to 2048.
        progress (bool): tqdm bar over folds x grid points.

    Returns:
        CVResult: ``ious[g, f, c]`` = intersection / union of class c summed
        over fold f's held-out images (NaN where the union is 0, or where
        point g's k exceeds fold f's memory: skipped with a note).
    """
    from tqdm import tqdm
    if not points:
        raise ValueError('the grid is empty: nothing to evaluate')
    folds = kfold_splits(data.num_images, n_splits, True, random_state)
    num_classes = data.labels.shape[2]
    ious = np.full((len(points), n_splits, num_classes), np.nan)
    notes: List[str] = []
    bar = tqdm(total=n_splits * len(points), desc='tuning retrieval (folds x grid)',
               unit='point', disable=not progress,
               bar_format='{l_bar}{bar}| {n:.0f}/{total_fmt} [{elapsed}<{remaining}]')
    for f, (train, test) in enumerate(folds):
        memory = _fold_memory(data, train, dict(memory_options or {}), memory_sampling)
        fit = [g for g, p in enumerate(points) if p.k <= len(memory)]
        skipped = sorted({p.k for p in points if p.k > len(memory)})
        if skipped:
            notes.append(f'fold {f}: k={skipped} skipped, larger than its memory '
                         f'({len(memory)} entries)')
        bar.update(len(points) - len(fit))
        rows = data.rows(test)
        inter, union = evaluate_fold(memory, data.keys[rows], data.labels[rows],
                                     [points[g] for g in fit], similarity_mode, chunk, bar)
        with np.errstate(invalid='ignore', divide='ignore'):
            ious[fit, f] = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    bar.close()
    return CVResult(list(points), ious, folds, notes)


def fold_statistics(ious: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and std over folds (axis 1), ignoring NaN folds.

    The std is the sample std (ddof=1, pandas' default, as the reference's
    notebook tables), 0 with a single finite fold; both are NaN with none.

    Args:
        ious (np.ndarray): (G, F, C).

    Returns:
        tuple[np.ndarray, np.ndarray]: (G, C) mean and std.
    """
    finite = np.isfinite(ious)
    count = finite.sum(axis=1)
    filled = np.where(finite, ious, 0.0)
    with np.errstate(invalid='ignore', divide='ignore'):
        mean = np.where(count > 0, filled.sum(axis=1) / np.maximum(count, 1), np.nan)
        sq = np.where(finite, (ious - mean[:, None]) ** 2, 0.0).sum(axis=1)
        std = np.where(count > 1, np.sqrt(sq / np.maximum(count - 1, 1)),
                       np.where(count == 1, 0.0, np.nan))
    return mean, std


def select_best(points: Sequence[GridPoint], ious: np.ndarray,
                class_names: Sequence[str]) -> List[dict]:
    """Per class, the grid point with the best mean-over-folds IoU (ties: first in grid order).

    Args:
        points (Sequence[GridPoint]): The G grid points.
        ious (np.ndarray): (G, F, C) IoUs (NaN: undefined).
        class_names (Sequence[str]): The C class names.

    Returns:
        list[dict]: One per class: ``class``, ``index`` (the row in
        ``points``), ``aggregation``, ``k``, ``beta``, ``threshold``,
        ``fold_ious``, ``mean``, ``std``, ``mean_minus_std``. A class whose
        mean is NaN everywhere (absent from every fold) keeps the first point,
        with NaN scores.
    """
    if ious.shape[0] != len(points) or ious.shape[2] != len(class_names):
        raise ValueError(f'ious of shape {ious.shape} do not match {len(points)} grid points '
                         f'and {len(class_names)} classes')
    mean, std = fold_statistics(ious)
    best = []
    for c, name in enumerate(class_names):
        column = np.where(np.isfinite(mean[:, c]), mean[:, c], -np.inf)
        g = int(np.argmax(column))  # the first maximum
        point = points[g]
        best.append(dict(
            {'class': name, 'index': g}, **point._asdict(),
            fold_ious=[float(v) for v in ious[g, :, c]], mean=float(mean[g, c]),
            std=float(std[g, c]), mean_minus_std=float(mean[g, c] - std[g, c])))
    return best
