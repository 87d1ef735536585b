"""Write an :class:`AOIInferencer`'s predictions to a folder (behind ``tools/infer.py``).

A folder that holds a previous run's outputs is refused unless ``overwrite``;
then only the files that run wrote (those its ``report.json``, ``areas.csv``
or in-progress record list) are removed, never anything else.
"""
import csv
import io
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Set

import numpy as np
import torch

from ..datasets.io import write_multilabel_mask
from ..utils.atomic_io import (
    _TEMPORARY_RE,
    atomic_write_text,
    other_process_alive,
    remove_stale_temporaries,
    this_host,
)
from .inference_inputs import AOIResult, InputsType

OUTPUT_DIRS = ('masks', 'overlays')
#: the stems a run will write, kept while it runs (a crashed run's files can be overwritten)
IN_PROGRESS = '.infer_in_progress.json'
OUTPUT_FILES = ('areas.csv', 'report.json', IN_PROGRESS)


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


def _files_under(folder: str) -> List[str]:
    return sorted(osp.normpath(osp.join(root, name))
                  for root, _, names in os.walk(folder) for name in names)


def _links_under(folder: str) -> List[str]:
    """Symbolic links at or below ``folder`` (a link could lead a removal outside OUT)."""
    if osp.islink(folder):
        return [folder]
    return sorted(osp.join(root, n) for root, dirs, names in os.walk(folder)
                  for n in dirs + names if osp.islink(osp.join(root, n)))


def previous_outputs(out_dir: str) -> List[str]:
    """What a previous run left in ``out_dir``: its files, and its sub-folders holding files."""
    found = [n for n in OUTPUT_FILES if osp.lexists(osp.join(out_dir, n))]
    return found + [d + '/' for d in OUTPUT_DIRS if _files_under(osp.join(out_dir, d))]


def _not_ours(path: str, why: str) -> FileExistsError:
    return FileExistsError(f'{path}: {why}, so it was not written by tools/infer.py and is kept; '
                           'choose another --out, or move it away')


def _refuse_a_live_run(out_dir: str) -> None:
    """FileExistsError when another live tools/infer.py process is writing to ``out_dir``."""
    try:
        with open(osp.join(out_dir, IN_PROGRESS), encoding='utf-8') as f:
            record = json.load(f)
        host, pid = str(record['host']), int(record['pid'])
    except (OSError, ValueError, KeyError, TypeError):
        return  # no record, or one without its writer: nothing to wait for
    if other_process_alive(host, pid):
        raise FileExistsError(f'--out {out_dir}: another tools/infer.py run (pid {pid} on '
                              f'{host}) is writing there; wait for it or choose another --out')


def _previous_stems(out_dir: str) -> Set[str]:
    """The stems a previous run lists in its report, CSV and in-progress record."""
    stems: Set[str] = set()
    for name, key in (('report.json', 'succeeded'), (IN_PROGRESS, 'planned')):
        path = osp.join(out_dir, name)
        if not osp.lexists(path):
            continue
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except (OSError, ValueError) as err:
            raise _not_ours(path, f'not readable as JSON ({err})') from err
        listed = data.get(key) if isinstance(data, dict) else None
        if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
            raise _not_ours(path, f'no list of stems under {key!r}')
        stems.update(listed)
    path = osp.join(out_dir, 'areas.csv')
    if osp.lexists(path):
        try:
            with open(path, newline='', encoding='utf-8') as f:
                reader = csv.DictReader(f)
                rows = list(reader)
        except (OSError, ValueError, csv.Error) as err:
            raise _not_ours(path, f'not readable as CSV ({err})') from err
        if list(reader.fieldnames or [])[:3] != ['stem', 'height', 'width']:
            raise _not_ours(path, 'its columns do not start with stem,height,width')
        stems.update(row['stem'] for row in rows)
    return stems


def prepare_output_folder(out_dir: str, overwrite: bool = False,
                          dry_run: bool = False) -> List[str]:
    """Make ``out_dir`` ready for a run: refuse a previous run's outputs, or remove them.

    Args:
        out_dir (str): The output folder (need not exist).
        overwrite (bool): Remove the previous run's own files: ``areas.csv``,
            ``report.json``, its in-progress record, and the mask / overlay
            PNGs of the stems these list (empty folders they leave go too).
            Any other file under ``masks/`` or ``overlays/`` makes it refuse,
            before anything is removed. Defaults to False.
        dry_run (bool): Only check; remove nothing. Defaults to False.

    Returns:
        list[str]: The files removed (or, with ``dry_run``, to remove).

    Raises:
        NotADirectoryError: ``out_dir`` is a file.
        FileExistsError: Previous outputs without ``overwrite``, or files
            that the previous run's record does not list.
    """
    if osp.lexists(out_dir) and not osp.isdir(out_dir):
        raise NotADirectoryError(f'--out {out_dir}: exists and is not a folder')
    found = previous_outputs(out_dir) if osp.isdir(out_dir) else []
    if not found:
        return []
    _refuse_a_live_run(out_dir)
    if not overwrite:
        raise FileExistsError(
            f'--out {out_dir}: holds the outputs of a previous run ({", ".join(found)}), which '
            "would be mixed with this run's; pass --overwrite (overwrite=True) to replace them "
            '(only files that run wrote are removed) or choose another --out')
    links = [p for d in OUTPUT_DIRS for p in _links_under(osp.join(out_dir, d))]
    if links:  # tools/infer.py writes plain files and folders only
        raise _not_ours(links[0], 'a symbolic link')
    stems = _previous_stems(out_dir)
    own = {osp.normpath(osp.join(out_dir, d, _safe_stem(s) + '.png'))
           for s in stems for d in OUTPUT_DIRS}
    foreign = [p for d in OUTPUT_DIRS for p in _files_under(osp.join(out_dir, d))
               if p not in own and not _TEMPORARY_RE.match(osp.basename(p))]
    if foreign:
        raise FileExistsError(
            f'--overwrite: {len(foreign)} file(s) under {out_dir} are not listed by its '
            f'report.json / areas.csv, e.g. {foreign[0]}; they were not written by '
            'tools/infer.py (or their record is lost) and are kept: choose another --out, or '
            'move them away')
    plan = sorted(p for p in own if osp.lexists(p)) + [
        osp.join(out_dir, n) for n in OUTPUT_FILES if osp.lexists(osp.join(out_dir, n))]
    if dry_run:
        return plan
    for path in plan:
        os.remove(path)
    for d in OUTPUT_DIRS:  # temporaries of killed writers, then the folders emptied here
        top = osp.normpath(osp.join(out_dir, d))
        emptied = {top} | {osp.dirname(p) for p in plan if p.startswith(top + os.sep)}
        for root, _, _ in sorted(os.walk(top), reverse=True):  # children first
            remove_stale_temporaries(root)
            if any(e == root or e.startswith(root + os.sep) for e in emptied) and \
                    not os.listdir(root):
                os.rmdir(root)
    return plan


def write_inference_outputs(inferencer: Any,
                            inputs: InputsType,
                            out_dir: str,
                            overlay: bool = True,
                            batch_size: int = 1,
                            progress: bool = True,
                            extra: Optional[Dict[str, Any]] = None,
                            overwrite: bool = False) -> Dict[str, Any]:
    """Segment ``inputs`` and write masks, overlays, areas and a report, atomically.

    For every image: ``<out>/masks/<stem>.png`` (bit mask, bit c <=> class c,
    :func:`write_multilabel_mask`) and ``<out>/overlays/<stem>.png`` (the
    :class:`MultiLabelSegLocalVisualizer` drawing of the prediction over the
    false-colour composite). Then ``<out>/areas.csv`` (stem, height, width,
    per class pixels and share of the image) and ``<out>/report.json``
    (settings, ``succeeded`` stems, ``failed`` entries ``{file, reason}``,
    ``skipped`` label-named sub-folders holding buffer files ``{file,
    reason}``, ``warnings`` ``{file, stem, warning}``: a colour buffer, or
    16-bit values given to a model normalised in 0-255 units, with the
    ``images`` concerned). An unpaired, unreadable or corrupt input is
    listed in ``failed`` and skipped; the others are still segmented.
    Nothing is removed or written before the inputs are listed; then
    :func:`prepare_output_folder` checks (or, with ``overwrite``, clears)
    ``out_dir``.

    Args:
        inferencer (AOIInferencer): The model.
        inputs: What :meth:`AOIInferencer.collect_inputs` accepts.
        out_dir (str): Output folder.
        overlay (bool): Write overlays. Defaults to True.
        batch_size (int): Images per forward pass. Defaults to 1.
        progress (bool): Progress bar. Defaults to True.
        extra (dict, optional): More entries for the report (config, ...).
        overwrite (bool): Replace a previous run's outputs in ``out_dir``
            (see :func:`prepare_output_folder`). Defaults to False.

    Returns:
        dict: The report written to ``report.json``.

    Raises:
        AOIDataError: An input path does not exist or a folder holds no
            buffer file at all (nothing to segment).
        FileExistsError: ``out_dir`` holds a previous run's outputs (see
            :func:`prepare_output_folder`).
    """
    skipped: List[Dict[str, str]] = []
    notes: List[Dict[str, Any]] = []
    items, failures = inferencer.collect_inputs(inputs, strict=False, skipped=skipped)
    prepare_output_folder(out_dir, overwrite)
    atomic_write_text(osp.join(out_dir, IN_PROGRESS), json.dumps(
        dict(host=this_host(), pid=os.getpid(), planned=[stem for stem, _ in items]),
        indent=1) + '\n')
    visualizer = None
    if overlay:
        from mmseg.structures import SegDataSample  # noqa: F401  (registers mmseg types)

        from ..visualization import MultiLabelSegLocalVisualizer
        alpha = float((inferencer.cfg.get('visualizer') or {}).get('alpha', 0.5))
        visualizer = MultiLabelSegLocalVisualizer(
            name=f'aoi_infer_{id(inferencer)}_{id(items)}', classes=inferencer.class_names,
            palette=inferencer.palette(), alpha=alpha)
    rows: List[Dict[str, Any]] = []
    for result in inferencer.iter_results(items, batch_size, progress, failures, notes):
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
                  device=str(inferencer.device),
                  checkpoint_file=getattr(inferencer, 'checkpoint', None),
                  succeeded=[r['stem'] for r in rows], failed=failures, skipped=skipped,
                  warnings=notes)
    atomic_write_text(osp.join(out_dir, 'report.json'), json.dumps(report, indent=2) + '\n')
    os.remove(osp.join(out_dir, IN_PROGRESS))
    return report
