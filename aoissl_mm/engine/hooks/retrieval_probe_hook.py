"""Validate a self-supervised run with a quick retrieval mIoU (the reference's checkpoint probe)."""
import logging
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS

from .retrieval_memory_hook import unwrap_model


@PRETRAIN_HOOKS.register_module()
class RetrievalProbeHook(Hook):
    """Every ``interval`` iterations, label held-out images from a patch memory of the student.

    The reference picked SSL checkpoints by a quick in-context segmentation
    score (patch retrieval, k = 30, threshold 0.3, β = 0.02, attention). This
    hook does the same without copying the model: a ``RetrievalSegmentor``
    is wrapped around the live student backbone (not frozen, its training
    state restored afterwards), its memory is built from ``memory_dataloader``
    (labelled images) and ``query_dataloader`` (other labelled images) is
    scored with dataset-level IoU per class. ``probe/mIoU`` and
    ``probe/IoU.<class>`` go to the message hub and to the visualizer's
    backends (``scalars.json``, TensorBoard), at the probed iteration; the
    per-class line goes to the log. Keep both loaders small (a few images, small crops): the probe
    runs inside training.

    Args:
        memory_dataloader (dict): Labelled images for the memory.
        query_dataloader (dict): Labelled images to score.
        interval (int, optional): Iterations between probes. ``None``
            probes only once, when training ends. Whatever the interval, the
            hook also probes when training ends (the last iteration, or an
            earlier stop such as a ``TimeBudgetHook``'s, where ``max_iters``
            is never reached) unless it has just probed that iteration.
            Defaults to 1000.
        k (int | Sequence[int]): Neighbours. Defaults to 30.
        threshold (float | Sequence[float]): Defaults to 0.3.
        beta (float): Attention temperature. Defaults to 0.02.
        aggregation (str): ``'attention'`` (the reference's) or
            ``'similarity'``.
        mean (Sequence[float], optional): Z-score mean of the probe's
            preprocessor; defaults to the SSL model's data preprocessor's.
        std (Sequence[float], optional): As ``mean``.
    """

    priority = 'LOW'

    def __init__(self,
                 memory_dataloader: dict,
                 query_dataloader: dict,
                 interval: Optional[int] = 1000,
                 k=30,
                 threshold=0.3,
                 beta: float = 0.02,
                 aggregation: str = 'attention',
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None) -> None:
        if interval is not None and (isinstance(interval, bool) or int(interval) != interval
                                     or interval <= 0):
            raise ValueError(f'RetrievalProbeHook: interval must be a positive int or None '
                             f'(only at the end), got {interval!r}')
        self.memory_dataloader = memory_dataloader
        self.query_dataloader = query_dataloader
        self.interval = None if interval is None else int(interval)
        self._last_probed_iter = -1
        self._trained_here = False
        self.seg_kwargs = dict(k=k, threshold=threshold, beta=beta, aggregation=aggregation)
        self.mean, self.std = mean, std
        self._loaders = None

    def _build_segmentor(self, runner):
        from mmseg.registry import MODELS as SEG_MODELS
        model = unwrap_model(runner.model)
        pre = model.data_preprocessor
        mean = self.mean if self.mean is not None else pre.mean.flatten().tolist()
        std = self.std if self.std is not None else pre.std.flatten().tolist()
        dataset = self._loaders[0].dataset
        classes = list(dataset.metainfo['classes'])
        segmentor = SEG_MODELS.build(dict(
            type='RetrievalSegmentor', backbone=model.backbone, num_classes=len(classes),
            class_names=classes, memory=dict(index_type='flat', device='cpu'),
            data_preprocessor=dict(type='SegDataPreProcessor', mean=mean, std=std,
                                   bgr_to_rgb=False, pad_val=0, seg_pad_val=255),
            **self.seg_kwargs))
        return segmentor.to(next(model.backbone.parameters()).device), classes

    def probe(self, runner) -> Dict[str, float]:
        """Build the memory with the current backbone and score the query images.

        The segmentation parts (datasets, segmentor) are built in the mmseg
        scope, whatever the SSL runner's is.

        Returns:
            dict: ``mIoU`` and ``IoU.<class>`` in percent.
        """
        from mmengine.registry import DefaultScope
        with DefaultScope.overwrite_default_scope('mmseg'):
            return self._probe(runner)

    @torch.no_grad()
    def _probe(self, runner) -> Dict[str, float]:
        if self._loaders is None:
            self._loaders = (runner.build_dataloader(self.memory_dataloader, seed=runner.seed),
                             runner.build_dataloader(self.query_dataloader, seed=runner.seed))
        backbone = unwrap_model(runner.model).backbone
        was_training = backbone.training
        try:
            segmentor, classes = self._build_segmentor(runner)
            segmentor.build_memory(self._loaders[0], progress=False)
            inter = np.zeros(len(classes))
            union = np.zeros(len(classes))
            for data in self._loaders[1]:
                data = segmentor.data_preprocessor(data, False)
                for sample in segmentor.predict(data['inputs'], data['data_samples']):
                    pred = sample.pred_sem_seg.data.bool().cpu().numpy()
                    gt = (sample.gt_sem_seg.data == 1).cpu().numpy()
                    inter += (pred & gt).reshape(len(classes), -1).sum(1)
                    union += (pred | gt).reshape(len(classes), -1).sum(1)
        finally:
            backbone.train(was_training)
        iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan) * 100
        scores = {f'IoU.{c}': float(v) for c, v in zip(classes, iou)}
        scores['mIoU'] = float(np.nanmean(iou)) if np.isfinite(iou).any() else float('nan')
        return scores

    def _run(self, runner, done_iters: int) -> None:
        scores = self.probe(runner)
        for key, value in scores.items():
            runner.message_hub.update_scalar(f'probe/{key}', value)
        # mmengine's LogProcessor collects only train/ and val/ keys of the message hub: the
        # probe's scalars go to the visualizer's backends (scalars.json, TensorBoard) here
        visualizer = getattr(runner, 'visualizer', None)
        if visualizer is not None:
            visualizer.add_scalars({f'probe/{k}': v for k, v in scores.items()}, step=done_iters)
        table = ', '.join(f'{k} {v:.2f}' for k, v in scores.items())
        print_log(f'retrieval probe at iter {done_iters}: {table}', logger='current',
                  level=logging.INFO)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Probe every ``interval`` iterations and after the last one."""
        periodic = self.interval is not None and self.every_n_train_iters(runner, self.interval)
        self._trained_here = True
        if periodic or self.is_last_train_iter(runner):
            self._last_probed_iter = runner.iter + 1
            self._run(runner, runner.iter + 1)

    def after_train(self, runner) -> None:
        """Probe the final weights when training stopped before ``max_iters`` (a time budget)."""
        # not after a --resume of a finished run, which trains no iteration in this process
        if self._trained_here and self._last_probed_iter != runner.iter:
            self._last_probed_iter = runner.iter
            self._run(runner, runner.iter)
