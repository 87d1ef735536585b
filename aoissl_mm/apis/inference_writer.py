"""Write an :class:`AOIInferencer`'s predictions to a folder (behind ``tools/infer.py``)."""
import csv
import io
import json
import os.path as osp
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ..datasets.io import write_multilabel_mask
from ..utils.atomic_io import atomic_write_text
from .inference_inputs import AOIResult, InputsType


def area_row(result: AOIResult) -> Dict[str, Any]:
    """``stem, height, width`` and per class ``<name>_pixels`` and ``<name>_share``."""
    height, width = result.masks.shape[:2]
    row: Dict[str, Any] = dict(stem=result.stem, height=height, width=width)
    pixels = result.masks.reshape(-1, result.masks.shape[2]).sum(axis=0, dtype=np.int64)
    for name, count in zip(result.class_names, pixels):
        row[f'{name}_pixels'] = int(count)
    for name, count in zip(result.class_names, pixels):
        row[f'{name}_share'] = f'{count / (height * width):.6f}'
    return row


def _safe_stem(stem: str) -> str:
    """A stem as a relative output path (no absolute part, no ``..``)."""
    parts = [p for p in stem.replace('\\', '/').split('/') if p not in ('', '.', '..')]
    return osp.join(*parts) if parts else '_'


def write_inference_outputs(inferencer: Any,
                            inputs: InputsType,
                            out_dir: str,
                            overlay: bool = True,
                            batch_size: int = 1,
                            progress: bool = True,
                            extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Segment ``inputs`` and write masks, overlays, areas and a report, atomically.

    For every image: ``<out>/masks/<stem>.png`` (bit mask, bit c <=> class c,
    :func:`write_multilabel_mask`) and ``<out>/overlays/<stem>.png`` (the
    :class:`MultiLabelSegLocalVisualizer` drawing of the prediction over the
    false-colour composite). Then ``<out>/areas.csv`` (stem, height, width,
    per class pixels and share of the image) and ``<out>/report.json``
    (settings, ``succeeded`` stems, ``failed`` entries ``{file, reason}``).
    An unpaired, unreadable or corrupt input is listed in ``failed`` and
    skipped; the others are still segmented.

    Args:
        inferencer (AOIInferencer): The model.
        inputs: What :meth:`AOIInferencer.collect_inputs` accepts.
        out_dir (str): Output folder.
        overlay (bool): Write overlays. Defaults to True.
        batch_size (int): Images per forward pass. Defaults to 1.
        progress (bool): Progress bar. Defaults to True.
        extra (dict, optional): More entries for the report (config, ...).

    Returns:
        dict: The report written to ``report.json``.

    Raises:
        AOIDataError: An input path does not exist or a folder holds no
            buffer file at all (nothing to segment).
    """
    items, failures = inferencer.collect_inputs(inputs, strict=False)
    visualizer = None
    if overlay:
        from mmseg.structures import SegDataSample  # noqa: F401  (registers mmseg types)

        from ..visualization import MultiLabelSegLocalVisualizer
        alpha = float((inferencer.cfg.get('visualizer') or {}).get('alpha', 0.5))
        visualizer = MultiLabelSegLocalVisualizer(
            name=f'aoi_infer_{id(inferencer)}_{id(items)}', classes=inferencer.class_names,
            palette=inferencer.palette(), alpha=alpha)
    rows: List[Dict[str, Any]] = []
    for result in inferencer.iter_results(items, batch_size, progress, failures):
        rel = _safe_stem(result.stem)
        write_multilabel_mask(osp.join(out_dir, 'masks', rel + '.png'), result.masks)
        if visualizer is not None:
            from mmengine.structures import PixelData
            from mmseg.structures import SegDataSample
            sample = SegDataSample()
            sample.pred_sem_seg = PixelData(
                data=torch.from_numpy(np.ascontiguousarray(result.masks.transpose(2, 0, 1))))
            visualizer.add_datasample(result.stem, result.image, sample, draw_gt=False,
                                      out_file=osp.join(out_dir, 'overlays', rel + '.png'))
        rows.append(area_row(result))
    fields = ['stem', 'height', 'width'] + [f'{n}_pixels' for n in inferencer.class_names] + [
        f'{n}_share' for n in inferencer.class_names]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(osp.join(out_dir, 'areas.csv'), buf.getvalue())
    report = dict(extra or {})
    report.update(classes=list(inferencer.class_names), thresholds=list(inferencer.thresholds),
                  threshold_rule='score > threshold' if inferencer.strict else
                  'score >= threshold', tta=inferencer.tta,
                  crop_size=list(inferencer.crop_size), stride=list(inferencer.stride),
                  succeeded=[r['stem'] for r in rows], failed=failures)
    atomic_write_text(osp.join(out_dir, 'report.json'), json.dumps(report, indent=2) + '\n')
    return report
