"""Inputs and results of :class:`~aoissl_mm.apis.AOIInferencer`: folders, pairs, arrays,
the checkpoint (a file or a work dir) and the device."""
import os
import os.path as osp
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..datasets.io import (
    AOIDataError,
    no_pairs_error,
    scan_buffer_pairs,
    split_buffer_stem,
    unpaired_error,
)

PathPair = Tuple[str, str]
InputType = Union[str, os.PathLike, PathPair, np.ndarray]
InputsType = Union[InputType, Sequence[InputType]]
#: one image to segment: its stem and its buffer pair (paths) or H x W x 2 array
InferenceItem = Tuple[str, Union[PathPair, np.ndarray]]
#: what :func:`load_image` warns about a buffer with colour channels (``io.read_image`` says it)
_CHANNEL_WARNING = 'keeping the first one'


class InferenceWarning(UserWarning):
    """Something about an input the user should see (also recorded in ``report.json``)."""


@dataclass
class AOIResult:
    """The prediction of one image, at its full original size.

    Attributes:
        stem (str): Name of the image (relative to the input folder, e.g.
            ``'lot1/x'``; ``'array_<i>'`` for the i-th in-memory array).
        masks (np.ndarray): (H, W, C) uint8 {0, 1}, one channel per class.
        probabilities (np.ndarray): (C, H, W) float32 scores in [0, 1].
        class_names (tuple[str, ...]): The C class names, in channel order.
        image (np.ndarray): The (H, W, 2) input as read (uint8 or uint16).
        source (tuple[str, str] | None): The buffer files, None for an array.
    """

    stem: str
    masks: np.ndarray
    probabilities: np.ndarray
    class_names: Tuple[str, ...]
    image: np.ndarray
    source: Optional[PathPair] = None


def collect_inputs(inputs: InputsType, strict: bool = True,
                   skipped: Optional[List[Dict[str, str]]] = None
                   ) -> Tuple[List[InferenceItem], List[Dict[str, str]]]:
    """Turn ``inputs`` into ``(stem, source)`` items, in order.

    Args:
        inputs: A folder (searched at any depth), a buffer pair (tuple of
            two paths), one buffer file (its partner is found by name),
            an H x W x 2 uint8/uint16 array, or a list of these.
        strict (bool): Raise on an unpaired buffer in a folder (the
            message of :func:`find_buffer_pairs`); otherwise return it as
            a problem ``{'file', 'reason'}`` and go on. Defaults to True.
        skipped (list, optional): Sub-folders named like label folders
            (``masks``, ``labels``, ``lbl``, ...) are not searched, as in
            the datasets; each one that holds buffer files is appended here
            as ``{'file': folder, 'reason'}``. When None, it is warned about
            (:class:`InferenceWarning`).

    Returns:
        tuple: The items and the problems found while listing them.

    Raises:
        AOIDataError: A missing path, an input of an unknown kind, a folder
            with no pair, or (in strict mode) an unpaired buffer.
    """
    if isinstance(inputs, (str, os.PathLike, np.ndarray)) or _is_pair(inputs):
        inputs = [inputs]
    items: List[InferenceItem] = []
    problems: List[Dict[str, str]] = []
    for i, entry in enumerate(inputs):
        if isinstance(entry, np.ndarray):
            items.append((f'array_{i}', entry))
        elif _is_pair(entry):
            p0, p1 = (str(p) for p in entry)
            items.append((_pair_stem(p0), (p0, p1)))
        elif isinstance(entry, (str, os.PathLike)) and osp.isdir(entry):
            dirs: List[str] = []
            pairs, found = scan_buffer_pairs(str(entry), skipped_dirs=dirs)
            notes = skipped_folder_notes(dirs)
            if skipped is not None:
                skipped += notes
            else:
                for note in notes:
                    warnings.warn(f"{note['file']}: {note['reason']}", InferenceWarning)
            if strict and found:
                raise unpaired_error(found)
            if not pairs and not found:
                raise no_pairs_error(str(entry), (
                    f'; sub-folders named like label folders are not searched: '
                    f'{", ".join(n["file"] for n in notes)}' if notes else ''))
            problems += found
            items += [(stem, (p0, p1)) for stem, p0, p1 in pairs]
        elif isinstance(entry, (str, os.PathLike)) and osp.isfile(entry):
            items.append(_single_file(str(entry)))
        else:
            raise AOIDataError(f'input {i}: {entry!r} is neither an existing folder or '
                               'buffer file, a (buffer0, buffer1) pair of paths nor an '
                               'H x W x 2 array')
    return items, problems


def skipped_folder_notes(folders: Sequence[str]) -> List[Dict[str, str]]:
    """``{'file': folder, 'reason'}`` for each skipped label folder holding buffer files."""
    notes = []
    for folder in folders:
        count = sum(split_buffer_stem(name) is not None
                    for _, _, files in os.walk(folder) for name in files)
        if count:
            notes.append(dict(file=folder, reason=(
                f'{count} buffer file(s) not segmented: a sub-folder named '
                f'{osp.basename(folder)!r} is skipped (a labelled AOI layout keeps its labels '
                'there); pass that folder itself as INPUT, or rename it')))
    return notes


def _single_file(path: str) -> InferenceItem:
    parsed = split_buffer_stem(path)
    if parsed is None:
        raise AOIDataError(f'{path}: not a <stem>_buffer0/<stem>_buffer1 image file')
    folder, name = osp.split(path)
    base, ext = osp.splitext(name)
    partner = osp.join(folder, base[:-1] + str(1 - parsed[1]) + ext)
    pair = (path, partner) if parsed[1] == 0 else (partner, path)
    return parsed[0], pair

def load_image(item: InferenceItem,
               notes: Optional[List[Dict[str, Any]]] = None) -> np.ndarray:
    """The (H, W, 2) uint8/uint16 image of an item, read as the datasets read it.

    Files go through :class:`LoadAOIImage` (values unchanged, 16-bit
    keeps its range, an 8-bit buffer paired with a 16-bit one is scaled
    by 257); an array must already be H x W x 2 uint8 or uint16 and is
    used unchanged, as the same data read from a file would be. A buffer
    with colour channels keeps its first one: an :class:`InferenceWarning`,
    also appended to ``notes`` (when given) as ``{'file', 'stem', 'warning'}``.

    Raises:
        AOIDataError: Unreadable file, size mismatch, bad array.
    """
    stem, source = item
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 2 or source.dtype not in (np.uint8,
                                                                            np.uint16):
            raise AOIDataError(f'{stem}: an in-memory image must be an H x W x 2 uint8 or '
                               f'uint16 array (buffer0, buffer1), got shape {source.shape}, '
                               f'dtype {source.dtype}')
        return np.ascontiguousarray(source)
    from ..datasets.transforms import LoadAOIImage
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        image = LoadAOIImage().transform(dict(buffer_paths=source))['img']
    for w in caught:
        text = str(w.message)
        if _CHANNEL_WARNING not in text:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            continue
        if notes is not None:
            notes.append(dict(file=culprit(item, text), stem=stem, warning=text))
        warnings.warn(text, InferenceWarning)
    return image


def resolve_device(device: Optional[str] = None) -> str:
    """``device``, or ``'cuda'`` when CUDA is available else ``'cpu'`` (as mmseg's inferencer).

    Raises:
        ValueError: A CUDA device was asked for on a machine without CUDA.
    """
    import torch
    if device is None:
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'device {device!r}: CUDA is not available on this machine '
                         "(use device 'cpu')")
    return str(device)


def resolve_checkpoint(path: str) -> str:
    """A checkpoint file; a work dir stands for the file its ``last_checkpoint`` names.

    ``last_checkpoint`` holds the path the training wrote (maybe relative to
    where it ran); when that path is not found, the file of that name inside
    the work dir is used (a moved or copied work dir).

    Raises:
        FileNotFoundError: The work dir has no ``last_checkpoint``, or the
            file it names exists neither as written nor in the work dir.
    """
    if not osp.isdir(path):
        return path
    last = osp.join(path, 'last_checkpoint')
    if not osp.isfile(last):
        raise FileNotFoundError(f'checkpoint {path} is a folder without a last_checkpoint '
                                'file (expected a checkpoint file, or a work dir of tools/'
                                'train.py)')
    with open(last, encoding='utf-8') as f:
        target = f.read().strip()
    # the file inside the given work dir first: a copied work dir's last_checkpoint still names
    # the original run's path, which must not be picked up instead
    for candidate in (osp.join(path, osp.basename(target)), target):
        if target and osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(f'{last} names {target!r}, which is not a file (nor is '
                            f'{osp.join(path, osp.basename(target) or "<empty>")})')


def range_warning(image: np.ndarray, mean: Optional[Sequence[float]],
                  std: Optional[Sequence[float]]) -> Optional[str]:
    """Why ``image`` does not suit the model's Z-score, or None when it does.

    The normaliser looks like it is in 0-255 units when every mean and std
    value is at most 255; an image with a value above 255 (16-bit data) is
    then far outside what the model was trained on. Nothing is rescaled.
    """
    if mean is None or std is None or image.dtype == np.uint8:
        return None
    if max(float(v) for v in mean) > 255 or max(float(v) for v in std) > 255:
        return None
    peak = int(image.max()) if image.size else 0
    if peak <= 255:
        return None
    means = [round(float(v), 2) for v in mean]
    stds = [round(float(v), 2) for v in std]
    return (f'values up to {peak} (16-bit data), but the model normalises with mean={means}, '
            f'std={stds}, i.e. in 0-255 units: its predictions on these images are wrong. '
            'Inputs are not rescaled: compute the statistics of your images with python '
            'tools/aoi_stats.py <folder> and set model.data_preprocessor.mean and .std '
            '(in the config, or --cfg-options model.data_preprocessor.mean=[...] '
            'model.data_preprocessor.std=[...]), or convert the images to 8 bit')


def _is_pair(entry: object) -> bool:
    return isinstance(entry, tuple) and len(entry) == 2 and all(
        isinstance(p, (str, os.PathLike)) for p in entry)


def _pair_stem(path0: str) -> str:
    parsed = split_buffer_stem(path0)
    return parsed[0] if parsed is not None else osp.splitext(osp.basename(path0))[0]


def culprit(item: InferenceItem, err: Union[Exception, str]) -> str:
    """The file an error is about (the one it names), else the pair or the stem."""
    source = item[1]
    if isinstance(source, np.ndarray):
        return item[0]
    named = [p for p in source if p in str(err)]
    return named[0] if len(named) == 1 else ' + '.join(source)


def note_range(note: Dict[str, Any], item: InferenceItem, text: Optional[str],
               notes: Optional[List[Dict[str, Any]]]) -> None:
    """Count an image out of the model's range in ``note``; warn at the first one.

    Args:
        note (dict): This run's entry, empty until the first such image.
        item: The image's item.
        text (str | None): :func:`range_warning` of the image.
        notes (list, optional): Where the entry is listed (once).
    """
    if text is None:
        return
    if not note:
        where = item[0] if isinstance(item[1], np.ndarray) else ' + '.join(item[1])
        note.update(file=where, stem=item[0], images=0, warning=f'{where}: {text} (warned '
                    'once per run; report.json counts the images)')
        if notes is not None:
            notes.append(note)
        warnings.warn(note['warning'], InferenceWarning)
    note['images'] += 1
