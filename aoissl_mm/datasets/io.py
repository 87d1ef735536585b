"""File I/O of the AOI data format: buffer pairs and multi-label masks.

On-disk contract (see the README)::

    <data_root>/images/<split>/<stem>_buffer0.png   and   <stem>_buffer1.png
    <data_root>/labels/<split>/<stem>.png   (uint8 bit mask, bit c <=> class c)
                                   or <stem>.npy (H x W x C, values 0/1)

Every reader raises :class:`AOIDataError` naming the file and what was
expected; every writer goes through :func:`aoissl_mm.utils.atomic_io.atomic_path`
(temporary file, ``fsync``, ``os.replace``) so a crash never leaves a
half-written file behind.
"""
from __future__ import annotations

import os
import os.path as osp
import re
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..utils.atomic_io import atomic_path

IMG_EXTENSIONS = ('.png', '.tif', '.tiff', '.bmp', '.jpg', '.jpeg', '.webp')
LABEL_EXTENSIONS = ('.png', '.npy')
_BUFFER_RE = re.compile(r'^(?P<stem>.+?)_buffer_?(?P<idx>[01])$', re.IGNORECASE)
_LABEL_DIR_NAMES = {'lbl', 'label', 'labels', 'mask', 'masks'}


class AOIDataError(ValueError):
    """A file of the AOI data format is missing, unreadable or inconsistent."""


# ----------------------------------------------------------------------------
# writing (atomically: aoissl_mm.utils.atomic_io)
# ----------------------------------------------------------------------------
def write_image(path: str, image: np.ndarray, durable: bool = True) -> None:
    """Write an image with cv2 atomically; the format follows the extension.

    ``durable=False`` skips the ``fsync`` (files inside a temporary tree that is
    renamed as a whole, see :func:`aoissl_mm.utils.atomic_io.atomic_path`).
    """
    ext = osp.splitext(path)[1] or '.png'
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise AOIDataError(f'could not encode image for {path} (shape {image.shape}, '
                           f'dtype {image.dtype})')
    with atomic_path(path, durable=durable) as tmp:
        with open(tmp, 'wb') as f:
            f.write(buf.tobytes())


# ----------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------
def split_buffer_stem(path: str) -> Optional[Tuple[str, int]]:
    """``'a/b/x_buffer1.png'`` -> ``('x', 1)``; None if not a buffer file."""
    name, ext = osp.splitext(osp.basename(path))
    if ext.lower() not in IMG_EXTENSIONS:
        return None
    m = _BUFFER_RE.match(name)
    if m is None:
        return None
    return m.group('stem'), int(m.group('idx'))


def scan_buffer_pairs(folder: str, recursive: bool = True,
                      skipped_dirs: Optional[List[str]] = None
                      ) -> Tuple[List[Tuple[str, str, str]], List[Dict[str, str]]]:
    """List buffer pairs under ``folder`` and, separately, the files that form none.

    The one folder walk of the package: label folders are skipped, stems of
    sub-folders are relative to ``folder`` (``'sub/x'``), pairs are sorted.
    A buffer without its partner, or a stem with two files for one buffer, is
    returned as a problem ``{'file', 'reason'}`` instead of stopping the scan
    (:func:`find_buffer_pairs` raises the first one; ``tools/infer.py``
    reports them and goes on).

    Args:
        folder (str): Folder to scan.
        recursive (bool): Scan sub-folders too. Defaults to True.
        skipped_dirs (list, optional): When given, the label sub-folders
            the scan skipped are appended to it (their paths).

    Returns:
        tuple: ``[(stem, buffer0_path, buffer1_path)]`` and the problems.

    Raises:
        AOIDataError: The folder does not exist.
    """
    if not osp.isdir(folder):
        raise AOIDataError(f'image folder not found: {folder} (expected '
                           f'<stem>_buffer0.<ext> and <stem>_buffer1.<ext> files)')
    found: Dict[str, List[Optional[str]]] = {}
    dup: Dict[str, List[str]] = {}
    for root, dirs, files in os.walk(folder):
        if skipped_dirs is not None and recursive:
            skipped_dirs += [osp.join(root, d) for d in sorted(dirs)
                             if d.lower() in _LABEL_DIR_NAMES]
        dirs[:] = sorted(d for d in dirs if d.lower() not in _LABEL_DIR_NAMES)
        if not recursive:
            dirs[:] = []
        rel = osp.relpath(root, folder)
        for fname in sorted(files):
            parsed = split_buffer_stem(fname)
            if parsed is None:
                continue
            stem, idx = parsed
            key = stem if rel == '.' else osp.join(rel, stem)
            slot = found.setdefault(key, [None, None])
            if slot[idx] is not None:
                dup.setdefault(key, [slot[idx]]).append(osp.join(root, fname))
            else:
                slot[idx] = osp.join(root, fname)
    pairs, problems = [], []
    for key in sorted(found):
        p0, p1 = found[key]
        if key in dup:
            problems += [dict(file=f, reason=f'two files for one buffer of {key!r}: '
                              f'{", ".join(dup[key])}') for f in dup[key]]
        elif p0 is None or p1 is None:
            have, miss = (p1, 0) if p0 is None else (p0, 1)
            problems.append(dict(file=have, reason=f'no matching {osp.basename(key)}_buffer'
                                 f'{miss}.<ext> next to it (every image needs both light '
                                 'buffers)'))
        else:
            pairs.append((key, p0, p1))
    return pairs, problems


def find_buffer_pairs(folder: str, recursive: bool = False) -> List[Tuple[str, str, str]]:
    """List ``(stem, buffer0_path, buffer1_path)`` under ``folder``, sorted.

    Args:
        folder (str): Folder to scan.
        recursive (bool): Scan sub-folders too (label folders are skipped).
            The returned stem is then relative to ``folder`` (``'sub/x'``).

    Raises:
        AOIDataError: The folder is missing or holds no buffer pair, or a
            buffer has no partner (names the file and the missing partner).
    """
    pairs, problems = scan_buffer_pairs(folder, recursive)
    if problems:
        raise unpaired_error(problems)
    if not pairs:
        raise no_pairs_error(folder)
    return pairs


def unpaired_error(problems: Sequence[Dict[str, str]]) -> AOIDataError:
    """The error for the first problem :func:`scan_buffer_pairs` found (names the file)."""
    return AOIDataError(f"{problems[0]['file']}: {problems[0]['reason']}")


def no_pairs_error(folder: str, hint: str = '') -> AOIDataError:
    """The error for a folder without any buffer pair (names it and the extensions read)."""
    return AOIDataError(f'no <stem>_buffer0/<stem>_buffer1 image pairs found in {folder} '
                        f'(extensions {", ".join(IMG_EXTENSIONS)}){hint}')


def read_image(path: str) -> np.ndarray:
    """Read one grey-scale buffer unchanged (8- or 16-bit), H x W.

    A 3-channel (or 4-channel) file keeps its first channel, with a warning.

    Raises:
        AOIDataError: Missing, unreadable, truncated or of an unsupported dtype.
    """
    if not osp.isfile(path):
        raise AOIDataError(f'image file not found: {path}')
    with open(path, 'rb') as f:
        data = np.frombuffer(f.read(), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise AOIDataError(f'cannot decode image {path}: the file is corrupt, truncated or '
                           f'not an image (expected an 8- or 16-bit grey-scale PNG/TIFF)')
    if img.dtype not in (np.uint8, np.uint16):
        raise AOIDataError(f'{path}: unsupported pixel type {img.dtype} '
                           f'(expected 8- or 16-bit unsigned)')
    if img.ndim == 3:
        warnings.warn(f'{path} has {img.shape[2]} channels; keeping the first one '
                      f'(each buffer should be a single grey-scale channel)')
        img = np.ascontiguousarray(img[:, :, 0])
    return img


def read_buffer_pair(path0: str, path1: str) -> np.ndarray:
    """Read the two light buffers of one image as an H x W x 2 array.

    Channel 0 is ``buffer0``, channel 1 ``buffer1``. 16-bit data keeps its full
    range; if one buffer is 8- and the other 16-bit, the 8-bit one is scaled
    by 257 so both use the same range.

    Raises:
        AOIDataError: A buffer is unreadable, or the two sizes differ.
    """
    b0, b1 = read_image(path0), read_image(path1)
    if b0.shape != b1.shape:
        raise AOIDataError(f'buffer size mismatch: {path0} is {b0.shape[1]}x{b0.shape[0]} but '
                           f'{path1} is {b1.shape[1]}x{b1.shape[0]} (W x H); both light buffers '
                           f'of an image must have the same size')
    if b0.dtype != b1.dtype:
        b0, b1 = (x.astype(np.uint16) * (257 if x.dtype == np.uint8 else 1) for x in (b0, b1))
    return np.stack([b0, b1], axis=-1)


# ----------------------------------------------------------------------------
# multi-label masks
# ----------------------------------------------------------------------------
def encode_bitmask(mask: np.ndarray) -> np.ndarray:
    """H x W x C {0,1} -> H x W uint8 with bit c set <=> class c (C <= 8)."""
    if mask.ndim != 3 or mask.shape[2] > 8:
        raise AOIDataError(f'bit-mask encoding needs an H x W x C mask with C <= 8, '
                           f'got shape {mask.shape}')
    bits = np.zeros(mask.shape[:2], dtype=np.uint8)
    for c in range(mask.shape[2]):
        bits |= ((mask[:, :, c] > 0).astype(np.uint8) << c)
    return bits


def decode_bitmask(bits: np.ndarray, num_classes: int) -> np.ndarray:
    """H x W uint8 bit mask -> H x W x C uint8 {0,1}."""
    shifts = np.arange(num_classes, dtype=np.uint8)
    return ((bits[:, :, None] >> shifts) & 1).astype(np.uint8)


def write_multilabel_mask(path: str, mask: np.ndarray, durable: bool = True) -> None:
    """Write an H x W x C {0,1} mask as a bit-mask PNG or ``.npy`` (atomic; see
    :func:`write_image` for ``durable``)."""
    ext = osp.splitext(path)[1].lower()
    if ext == '.png':
        write_image(path, encode_bitmask(mask), durable)
    elif ext == '.npy':
        with atomic_path(path, durable=durable) as tmp:
            np.save(tmp, (np.asarray(mask) > 0).astype(np.uint8), allow_pickle=False)
    else:
        raise AOIDataError(f'{path}: unknown label format {ext!r} (expected .png bit mask or .npy)')


def read_multilabel_mask(path: str,
                         num_classes: int,
                         expected_hw: Optional[Sequence[int]] = None) -> np.ndarray:
    """Read a multi-label mask as H x W x C uint8 {0,1}.

    Args:
        path (str): ``.png`` bit mask (single channel, uint8) or ``.npy``
            (H x W x C, values 0/1).
        num_classes (int): C.
        expected_hw (tuple, optional): (H, W) the mask must have, i.e. the
            image size.

    Raises:
        AOIDataError: Missing or unreadable file, unknown format, wrong shape
            or values, bits set beyond ``num_classes``, or size != image size.
    """
    if not osp.isfile(path):
        raise AOIDataError(f'label file not found: {path}')
    ext = osp.splitext(path)[1].lower()
    if ext == '.npy':
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as err:
            raise AOIDataError(f'cannot read label {path}: {err}') from err
        if arr.ndim != 3 or arr.shape[2] != num_classes:
            raise AOIDataError(f'label {path} has shape {arr.shape}; expected H x W x '
                               f'{num_classes} (one 0/1 channel per class)')
        bad = ~np.isin(arr, (0, 1))
        if bad.any():
            raise AOIDataError(f'label {path} has values outside {{0, 1}} (e.g. '
                               f'{np.unique(arr[bad])[:5].tolist()}); expected 0/1 per class')
        mask = arr.astype(np.uint8)
    elif ext == '.png':
        bits = read_image(path)
        if bits.dtype != np.uint8:
            raise AOIDataError(f'label {path} is {bits.dtype}; expected an 8-bit bit-mask PNG')
        if num_classes < 8 and bits.size and int(bits.max()) >> num_classes:
            bad = int(bits.max())
            raise AOIDataError(f'label {path} has bits set beyond the {num_classes} classes '
                               f'(max value {bad} = 0b{bad:08b}); bit c marks class c, c < '
                               f'{num_classes}')
        mask = decode_bitmask(bits, num_classes)
    else:
        raise AOIDataError(f'label {path}: unknown label format {ext!r} '
                           f'(expected a .png bit mask or a .npy H x W x C array)')
    if expected_hw is not None and tuple(mask.shape[:2]) != tuple(expected_hw[:2]):
        raise AOIDataError(f'label {path} is {mask.shape[1]}x{mask.shape[0]} (W x H) but its '
                           f'image is {expected_hw[1]}x{expected_hw[0]}; they must match')
    return mask


def find_label_file(label_dir: str, stem: str) -> str:
    """Return ``<label_dir>/<stem>.png`` or ``.npy``; error naming both if neither."""
    for ext in LABEL_EXTENSIONS:
        cand = osp.join(label_dir, stem + ext)
        if osp.isfile(cand):
            return cand
    raise AOIDataError(f'no label for image {stem!r}: expected {osp.join(label_dir, stem)}.png '
                       f'(bit mask) or .npy')
