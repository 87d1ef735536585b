"""Cross-validated k / threshold / beta search for a retrieval config (behind
``tools/tune_retrieval.py``; the search itself is :mod:`aoissl_mm.models.retrieval.tuning`)."""
import copy
import logging
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import print_log

from ..models.retrieval.patch_memory import PatchMemory
from ..models.retrieval.tuning import (
    IGNORE,
    TuningData,
    cross_validate,
    kfold_splits,
    make_grid,
    select_best,
)
from ..utils import retrieval_tuning_report as report
from .retrieval_memory import init_retrieval_model, memory_dataloader_cfg

__all__ = ['extract_tuning_data', 'tune_retrieval']


def _raw_labels(masks: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
    """(B, C, H, W) ground truth as uint8 0 / 1 / IGNORE; other values are an error."""
    bad = (masks != 0) & (masks != 1) & (masks != IGNORE)
    if bool(bad.any()):
        i = int(bad.flatten(1).any(1).nonzero()[0])
        raise ValueError(f'gt_sem_seg of {names[i]} holds {masks[i][bad[i]][0].item()}; '
                         f'expected 0, 1 or {IGNORE} (ignored)')
    return masks.to(torch.uint8)


@torch.no_grad()
def extract_tuning_data(model: torch.nn.Module, dataloader, progress: bool = True) -> TuningData:
    """Keys (one backbone pass per image) and patchified labels of a labelled dataloader.

    The keys are those :meth:`RetrievalSegmentor.extract_feat` gives both to a
    memory and to a ``'whole'``-mode query; labels are cut like memory values
    (padding to the patch multiple is :data:`IGNORE`: background in a memory,
    not scored, as the segmentor crops it off its prediction).

    Args:
        model (nn.Module): A ``RetrievalSegmentor``.
        dataloader (Iterable): mmseg batches with ``gt_sem_seg`` (C, H, W).
        progress (bool): Progress bar.

    Returns:
        TuningData: The cached keys and labels.
    """
    from tqdm import tqdm

    from ..models.retrieval import patchify_masks
    keys, labels, counts, names = [], [], [], []
    total = len(dataloader) if hasattr(dataloader, '__len__') else None
    for data in tqdm(dataloader, total=total, desc='extracting keys', unit='batch',
                     disable=not progress):
        data = model.data_preprocessor(data, False)
        samples = data['data_samples']
        batch_names = [s.metainfo.get('img_path', '?') for s in samples]
        masks = _raw_labels(torch.stack([s.gt_sem_seg.data for s in samples]).cpu(), batch_names)
        if masks.shape[-2:] != data['inputs'].shape[-2:]:
            raise ValueError(f'images and masks differ in size: {tuple(data["inputs"].shape)} vs '
                             f'{tuple(masks.shape)} ({batch_names[0]})')
        feats = model.extract_feat(data['inputs']).float().cpu()
        if model.level == 'image':
            entries = feats[:, None]
            values = masks.flatten(2).transpose(1, 2)[:, None]  # (B, 1, H*W, C)
        else:
            p = model.patch_size
            height, width = masks.shape[-2:]
            padded = masks.new_full(masks.shape[:2] + (height + (-height) % p,
                                                       width + (-width) % p), IGNORE)
            padded[:, :, :height, :width] = masks
            entries, values = feats, patchify_masks(padded, p)
        if labels and values.shape[2:] != labels[0].shape[1:]:
            raise ValueError(f'{batch_names[0]}: {tuple(values.shape[2:])} label units x classes, '
                             f'earlier images {tuple(labels[0].shape[1:])}; level=image needs '
                             'images of one size')
        for i in range(entries.shape[0]):
            keys.append(entries[i])
            labels.append(values[i])
            counts.append(entries.shape[1])
        names.extend(batch_names)
    if not keys:
        raise ValueError('the tuning dataloader yielded no images (check its dataset and '
                         'data_root)')
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return TuningData(torch.cat(keys), torch.cat(labels), offsets, names)


def _aggregations(aggregation: Optional[str], model: torch.nn.Module) -> List[str]:
    if aggregation is None:
        return [model.aggregation]
    if aggregation == 'both':
        names = ['similarity', 'attention']
    elif aggregation in ('similarity', 'attention'):
        names = [aggregation]
    else:
        raise ValueError(f"--aggregation must be 'similarity', 'attention' or 'both', got "
                         f'{aggregation!r}')
    if model.level == 'image' and 'attention' in names:
        raise ValueError("level='image' supports aggregation='similarity' only (spec §8.3); "
                         'use --aggregation similarity')
    return names


def tune_retrieval(config: str,
                   checkpoint: Optional[str],
                   out_dir: str,
                   folds: int = 5,
                   aggregation: Optional[str] = None,
                   ks: Optional[Sequence[int]] = None,
                   betas: Optional[Sequence[float]] = None,
                   thresholds: Optional[Sequence[float]] = None,
                   data_root: Optional[str] = None,
                   split: Optional[str] = None,
                   cfg_options: Optional[dict] = None,
                   device: str = 'cpu',
                   seed: int = 42,
                   chunk: Optional[int] = None,
                   progress: bool = True) -> Dict:
    """Search per-class k / threshold (/ beta) by K-fold CV on a config's memory images.

    Args:
        config (str): A retrieval config (its ``RetrievalMemoryHook``
            dataloader gives the labelled training images).
        checkpoint (str, optional): Checkpoint holding the backbone.
        out_dir (str): Where ``results.csv``, ``best.json``,
            ``best_config.py`` and ``tuning.png`` are written (atomically).
        folds (int): K. Defaults to 5.
        aggregation (str, optional): ``'similarity'``, ``'attention'`` or
            ``'both'``; None: the config's.
        ks, betas, thresholds (Sequence, optional): Grid overrides (spec §8.4
            grids where None), applied to every aggregation searched.
        data_root (str, optional): Other labelled images (AOI layout).
        split (str, optional): Their split folder.
        cfg_options (dict, optional): Config overrides.
        device (str): Backbone device.
        seed (int): KFold seed. Defaults to 42.
        chunk (int, optional): Queries at once; default the model's
            ``query_chunk``.
        progress (bool): Progress bars.

    Returns:
        dict: The ``best.json`` payload plus ``table`` (text) and
        ``config_text`` (the ``best_config.py`` snippet).
    """
    from mmengine.runner import Runner
    model, cfg = init_retrieval_model(config, checkpoint, cfg_options, device)
    names = _aggregations(aggregation, model)
    points = [p for name in names for p in make_grid(name, ks, betas, thresholds)]
    loader_cfg = memory_dataloader_cfg(cfg, data_root, split)
    loader = Runner.build_dataloader(copy.deepcopy(loader_cfg))
    kfold_splits(len(loader.dataset), folds)  # fail before the backbone runs
    notes = []
    if model.test_cfg.get('mode', 'whole') != 'whole':
        notes.append(f"test_cfg.mode={model.test_cfg.get('mode')!r}: tuned on whole images")
    data = extract_tuning_data(model, loader, progress)
    memory_options = dict(model.memory_cfg)
    PatchMemory(data.keys.shape[1], tuple(data.labels.shape[1:]), **memory_options)  # check
    result = cross_validate(data, points, folds, seed, memory_options, model.memory_sampling,
                            model.similarity_mode, int(chunk or model.query_chunk), progress)
    notes += result.notes
    classes = list(model.class_names or [f'class_{c}' for c in range(model.num_classes)])
    best = {}
    for name in names:
        rows = [g for g, p in enumerate(points) if p.aggregation == name]
        picked = select_best([points[g] for g in rows], result.ious[rows], classes)
        for entry in picked:
            entry['index'] = rows[entry['index']]
        best[name] = picked
    chosen = report.choose_aggregation(best)
    config_text = report.best_config_text(best[chosen], chosen)
    payload = dict(config=config, checkpoint=checkpoint, level=model.level, folds=folds,
                   seed=seed, num_images=data.num_images, classes=classes,
                   similarity_mode=model.similarity_mode, iou='dataset-level per fold, fraction',
                   fold_images=[[data.names[i] for i in test] for _, test in result.folds],
                   grids={n: report.grid_values([p for p in points if p.aggregation == n])
                          for n in names},
                   best=best, chosen_aggregation=chosen,
                   best_model_cfg=report.best_model_cfg(best[chosen], chosen), notes=notes)
    os.makedirs(out_dir, exist_ok=True)
    report.write_results_csv(os.path.join(out_dir, 'results.csv'), points, result.ious, classes)
    report.write_json(os.path.join(out_dir, 'best.json'), payload)
    report.atomic_write_text(os.path.join(out_dir, 'best_config.py'), config_text)
    report.plot_tuning(os.path.join(out_dir, 'tuning.png'), points, result.ious, best, classes)
    for note in notes:
        print_log(f'tune_retrieval: {note}', logger='current', level=logging.WARNING)
    return dict(payload, table=report.best_table(best, chosen), config_text=config_text)
