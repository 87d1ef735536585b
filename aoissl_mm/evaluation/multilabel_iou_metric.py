"""Dataset-level (and optional per-batch) IoU for overlapping binary class masks."""
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

from ..datasets.io import write_multilabel_mask

# (area_intersect, area_union, area_pred, area_label, per-batch info or None)
_Result = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Optional[Tuple[float, int]]]


@METRICS.register_module()
class MultiLabelIoUMetric(IoUMetric):
    """IoU / Dice / precision / recall of multi-label (overlapping) binary masks.

    Predictions and ground truth are ``(C, H, W)`` maps, one 0/1 channel per
    class of ``dataset_meta['classes']`` (no background channel; a pixel may
    belong to several classes). Ground truth value ``ignore_index`` marks an
    ignored element (padding); it is masked element-wise, i.e. for that class
    channel only.

    For every class ``c`` the true positives ``TP_c`` (``area_intersect``),
    the predicted area ``TP_c + FP_c``, the labelled area ``TP_c + FN_c`` and
    the union ``TP_c + FP_c + FN_c`` are accumulated over the whole split.
    The parent's :meth:`IoUMetric.compute_metrics` then derives the per-class
    scores, prints its per-class table and averages with ``nanmean``: a class
    absent from both ground truth and prediction over the split has IoU
    ``0/0 = NaN`` and is left out of the means; a class only predicted has
    IoU 0 and counts. In this multi-label setting ``aAcc`` is
    ``sum_c TP_c / sum_c (TP_c + FN_c)`` (pixel-label recall) and ``mAcc``
    equals ``mRecall``.

    Besides the parent's keys (``aAcc``, ``mIoU``, ``mAcc``, ``mDice``,
    ``mFscore``, ``mPrecision``, ``mRecall``, in percent) the result holds the
    per-class scores as ``'<Score>.<class>'`` (e.g. ``'IoU.wire'``, NaN for an
    absent class) and, with ``per_batch=True``, ``'mIoU_per_batch'``.

    Args:
        ignore_index (int): Ground-truth value ignored element-wise.
            Defaults to 255.
        iou_metrics (Sequence[str] | str): Any of ``'mIoU'``, ``'mDice'``,
            ``'mFscore'``. Defaults to all three.
        per_batch (bool): Also report the reference paper's per-batch average
            (spec section 9) as ``'mIoU_per_batch'``: for each batch (one call
            of :meth:`process`) and class, IoU over all pixels of the batch; a
            class without ground-truth positives in the batch is skipped; the
            batch mIoU is the mean over the remaining classes (a batch where
            every class is skipped contributes nothing); the final value is
            the batch-size-weighted mean of the batch values. Defaults to
            False.
        nan_to_num (int, optional): Replace NaN per-class values by this
            number (then absent classes do count in the means). Defaults to
            None.
        beta (int): Weight of recall in the F-score. Defaults to 1.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        output_dir (str, optional): Write each prediction there as
            ``<stem>.png``, a bit mask with bit ``c`` set where class ``c`` is
            predicted (``<stem>.npy``, H x W x C, for more than 8 classes);
            ``<stem>`` is the sample's ``stem`` metainfo (the buffer pair's
            shared name, set by the dataset / ``LoadAOIImage``). mmseg's
            ``tools/test.py --out`` sets it. Defaults to None.
        format_only (bool): Only write the predictions (needs
            ``output_dir``); no ground truth is read and no metric computed.
            Defaults to False.
        prefix (str, optional): Prefix of the metric names. Defaults to None.
        **kwargs: Accepted and ignored, like the parent (``tools/test.py
            --out`` also sets ``keep_results=True``).

    Raises:
        ValueError: ``format_only`` without ``output_dir``.
    """

    def __init__(self,
                 ignore_index: int = 255,
                 iou_metrics: Union[Sequence[str], str] = ('mIoU', 'mDice', 'mFscore'),
                 per_batch: bool = False,
                 nan_to_num: Optional[int] = None,
                 beta: int = 1,
                 collect_device: str = 'cpu',
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 prefix: Optional[str] = None,
                 **kwargs: Any) -> None:
        if isinstance(iou_metrics, str):
            iou_metrics = [iou_metrics]
        allowed = ('mIoU', 'mDice', 'mFscore')
        unknown = [m for m in iou_metrics if m not in allowed]
        if unknown:
            raise ValueError(f'MultiLabelIoUMetric: unknown iou_metrics {unknown}; '
                             f'expected a subset of {list(allowed)}')
        if format_only and not output_dir:
            raise ValueError('MultiLabelIoUMetric: format_only=True needs output_dir '
                             '(the folder the predicted masks are written to)')
        super().__init__(ignore_index=ignore_index, iou_metrics=list(iou_metrics),
                         nan_to_num=nan_to_num, beta=beta, collect_device=collect_device,
                         output_dir=output_dir, format_only=format_only, prefix=prefix,
                         **kwargs)
        self.per_batch = per_batch

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------
    def _num_classes(self) -> int:
        """Number of classes from ``dataset_meta``; clear error if unset."""
        meta = self.dataset_meta
        if not meta or 'classes' not in meta:
            raise ValueError('MultiLabelIoUMetric: dataset_meta with "classes" is not set '
                             '(the Runner copies it from the dataset; set '
                             'metric.dataset_meta = dict(classes=...) when used alone)')
        return len(meta['classes'])

    @staticmethod
    def _as_chw(data_sample: dict, key: str, num_classes: int) -> torch.Tensor:
        """Return ``data_sample[key]['data']`` as a (C, H, W) tensor, checked."""
        if key not in data_sample or 'data' not in data_sample[key]:
            raise KeyError(f'MultiLabelIoUMetric: data sample of '
                           f'{data_sample.get("img_path", "<unknown image>")} has no '
                           f'{key}["data"] (expected a (C, H, W) 0/1 map)')
        data = torch.as_tensor(data_sample[key]['data'])
        if data.ndim != 3:
            raise ValueError(f'MultiLabelIoUMetric: {key} of '
                             f'{data_sample.get("img_path", "<unknown image>")} has shape '
                             f'{tuple(data.shape)}; expected (C, H, W) with one 0/1 channel '
                             f'per class (C = {num_classes})')
        if data.shape[0] != num_classes:
            raise ValueError(f'MultiLabelIoUMetric: {key} of '
                             f'{data_sample.get("img_path", "<unknown image>")} has '
                             f'{data.shape[0]} channels but dataset_meta has {num_classes} '
                             f'classes; they must be equal (one channel per class)')
        return data

    def _areas(self, pred: torch.Tensor, gt: torch.Tensor,
               img_path: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-class TP, union, predicted and labelled areas of one image."""
        if pred.shape != gt.shape:
            raise ValueError(f'MultiLabelIoUMetric: prediction of {img_path} has shape '
                             f'{tuple(pred.shape)} but its ground truth {tuple(gt.shape)}; '
                             f'they must match')
        gt = gt.to(pred.device)
        bad_pred = (pred != 0) & (pred != 1)
        if bool(bad_pred.any()):
            raise ValueError(f'MultiLabelIoUMetric: pred_sem_seg of {img_path} holds values '
                             f'other than 0/1 (e.g. {pred[bad_pred][0].item()}); expected '
                             f'thresholded binary masks')
        valid = gt != self.ignore_index
        bad_gt = valid & (gt != 0) & (gt != 1)
        if bool(bad_gt.any()):
            raise ValueError(f'MultiLabelIoUMetric: gt_sem_seg of {img_path} holds values '
                             f'other than 0, 1 and ignore_index={self.ignore_index} '
                             f'(e.g. {gt[bad_gt][0].item()})')
        p = (pred == 1) & valid
        g = gt == 1
        area_intersect = (p & g).sum(dim=(1, 2)).to(torch.float64).cpu()
        area_pred = p.sum(dim=(1, 2)).to(torch.float64).cpu()
        area_label = g.sum(dim=(1, 2)).to(torch.float64).cpu()
        area_union = area_pred + area_label - area_intersect
        return area_intersect, area_union, area_pred, area_label

    def _write_prediction(self, pred: torch.Tensor, data_sample: dict) -> None:
        """Write one (C, H, W) prediction to ``output_dir`` as a bit-mask PNG."""
        stem = data_sample.get('stem')
        if not stem:
            raise KeyError(f'MultiLabelIoUMetric: output_dir is set but the data sample of '
                           f'{data_sample.get("img_path", "<unknown image>")} has no "stem" '
                           f'metainfo to name its mask file after (LoadAOIImage sets it and '
                           f"PackMultiLabelSegInputs' meta_keys carry it)")
        ext = '.png' if pred.shape[0] <= 8 else '.npy'
        mask = (pred.detach().cpu().numpy() == 1).astype(np.uint8).transpose(1, 2, 0)
        write_multilabel_mask(osp.abspath(osp.join(self.output_dir, stem + ext)), mask)

    # ------------------------------------------------------------------
    # BaseMetric API
    # ------------------------------------------------------------------
    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Accumulate per-class areas of one batch (and write predictions).

        Appends one entry per image, each ``(area_intersect, area_union,
        area_pred, area_label, batch_info)``; ``batch_info`` is None except
        on the batch's first image with ``per_batch=True``, where it is
        ``(batch mIoU or NaN, batch size)``.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs as dicts with
                ``pred_sem_seg['data']`` and (unless ``format_only``)
                ``gt_sem_seg['data']``, both (C, H, W), plus ``img_path``.

        Raises:
            ValueError: dataset_meta unset; a map is not (C, H, W) with C =
                the number of classes; shapes differ; non-binary values.
        """
        num_classes = self._num_classes()
        batch_results: List[Tuple[torch.Tensor, ...]] = []
        for data_sample in data_samples:
            pred = self._as_chw(data_sample, 'pred_sem_seg', num_classes)
            if not self.format_only:
                gt = self._as_chw(data_sample, 'gt_sem_seg', num_classes)
                batch_results.append(
                    self._areas(pred, gt, data_sample.get('img_path', '<unknown image>')))
            if self.output_dir is not None:
                self._write_prediction(pred, data_sample)
        if not batch_results:
            return
        batch_info: Optional[Tuple[float, int]] = None
        if self.per_batch:
            intersect = sum(r[0] for r in batch_results)
            union = sum(r[1] for r in batch_results)
            label = sum(r[3] for r in batch_results)
            present = label > 0
            batch_miou = float((intersect[present] / union[present]).mean()) \
                if bool(present.any()) else float('nan')
            batch_info = (batch_miou, len(batch_results))
        for i, areas in enumerate(batch_results):
            self.results.append((*areas, batch_info if i == 0 else None))

    def compute_metrics(self, results: List[_Result]) -> Dict[str, float]:
        """Turn the accumulated areas into metrics.

        Args:
            results (list): Entries appended by :meth:`process`.

        Returns:
            dict[str, float]: The parent's summary keys, ``'<Score>.<class>'``
            per-class values and, with ``per_batch``, ``'mIoU_per_batch'``
            (all in percent, rounded to 2 decimals).
        """
        if self.format_only:
            logger: MMLogger = MMLogger.get_current_instance()
            logger.info(f'MultiLabelIoUMetric: predicted masks are written to {self.output_dir}')
            return OrderedDict()
        if not results:
            raise ValueError('MultiLabelIoUMetric: no predictions were processed (empty '
                             'evaluation split?); nothing to compute')
        areas = [r[:4] for r in results]
        metrics = super().compute_metrics(areas)

        totals = [sum(col) for col in zip(*areas)]
        per_class = self.total_area_to_metrics(*totals, self.metrics, self.nan_to_num, self.beta)
        for score in ('IoU', 'Dice', 'Fscore', 'Precision', 'Recall'):
            if score not in per_class:
                continue
            for name, value in zip(self.dataset_meta['classes'], per_class[score]):
                metrics[f'{score}.{name}'] = float(np.round(value * 100, 2))

        if self.per_batch:
            infos = [r[4] for r in results if r[4] is not None and not np.isnan(r[4][0])]
            if infos:
                weights = np.array([n for _, n in infos], dtype=np.float64)
                values = np.array([v for v, _ in infos], dtype=np.float64)
                value = float(np.round((weights * values).sum() / weights.sum() * 100, 2))
            else:
                value = float('nan')
            metrics['mIoU_per_batch'] = value
            print_log(f'mIoU_per_batch (batch-size-weighted mean over {len(infos)} batches '
                      f'with ground truth): {value}', logger=MMLogger.get_current_instance())
        return metrics
