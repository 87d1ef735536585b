"""Inputs and results of :class:`~aoissl_mm.apis.AOIInferencer`: folders, pairs, arrays."""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..datasets.io import AOIDataError, find_buffer_pairs, scan_buffer_pairs, split_buffer_stem

PathPair = Tuple[str, str]
InputType = Union[str, os.PathLike, PathPair, np.ndarray]
InputsType = Union[InputType, Sequence[InputType]]
#: one image to segment: its stem and its buffer pair (paths) or H x W x 2 array
InferenceItem = Tuple[str, Union[PathPair, np.ndarray]]


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


def collect_inputs(inputs: InputsType, strict: bool = True
                   ) -> Tuple[List[InferenceItem], List[Dict[str, str]]]:
    """Turn ``inputs`` into ``(stem, source)`` items, in order.

    Args:
        inputs: A folder (searched at any depth), a buffer pair (tuple of
            two paths), one buffer file (its partner is found by name),
            an H x W x 2 uint8/uint16 array, or a list of these.
        strict (bool): Raise on an unpaired buffer in a folder (the
            message of :func:`find_buffer_pairs`); otherwise return it as
            a problem ``{'file', 'reason'}`` and go on. Defaults to True.

    Returns:
        tuple: The items and the problems found while listing them.

    Raises:
        AOIDataError: A missing path, an input of an unknown kind, or (in
            strict mode) an unpaired buffer.
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
            if strict:
                pairs = find_buffer_pairs(str(entry), recursive=True)
            else:
                pairs, found = scan_buffer_pairs(str(entry))
                problems += found
                if not pairs and not found:
                    raise AOIDataError(f'no <stem>_buffer0/<stem>_buffer1 image pairs found '
                                       f'in {entry}')
            items += [(stem, (p0, p1)) for stem, p0, p1 in pairs]
        elif isinstance(entry, (str, os.PathLike)) and osp.isfile(entry):
            items.append(_single_file(str(entry)))
        else:
            raise AOIDataError(f'input {i}: {entry!r} is neither an existing folder or '
                               'buffer file, a (buffer0, buffer1) pair of paths nor an '
                               'H x W x 2 array')
    return items, problems

def _single_file(path: str) -> InferenceItem:
    parsed = split_buffer_stem(path)
    if parsed is None:
        raise AOIDataError(f'{path}: not a <stem>_buffer0/<stem>_buffer1 image file')
    folder, name = osp.split(path)
    base, ext = osp.splitext(name)
    partner = osp.join(folder, base[:-1] + str(1 - parsed[1]) + ext)
    pair = (path, partner) if parsed[1] == 0 else (partner, path)
    return parsed[0], pair

def load_image(item: InferenceItem) -> np.ndarray:
    """The (H, W, 2) uint8/uint16 image of an item, read as the datasets read it.

    Files go through :class:`LoadAOIImage` (values unchanged, 16-bit
    keeps its range, an 8-bit buffer paired with a 16-bit one is scaled
    by 257); an array must already be H x W x 2 uint8 or uint16 and is
    used unchanged, as the same data read from a file would be.

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
    return LoadAOIImage().transform(dict(buffer_paths=source))['img']


def _is_pair(entry: object) -> bool:
    return isinstance(entry, tuple) and len(entry) == 2 and all(
        isinstance(p, (str, os.PathLike)) for p in entry)


def _pair_stem(path0: str) -> str:
    parsed = split_buffer_stem(path0)
    return parsed[0] if parsed is not None else osp.splitext(osp.basename(path0))[0]


def culprit(item: InferenceItem, err: Exception) -> str:
    """The file an error is about (the one it names), else the pair or the stem."""
    source = item[1]
    if isinstance(source, np.ndarray):
        return item[0]
    named = [p for p in source if p in str(err)]
    return named[0] if len(named) == 1 else ' + '.join(source)
