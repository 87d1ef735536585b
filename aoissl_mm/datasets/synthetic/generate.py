"""Writing the synthetic benchmark to disk (atomically), and generating it on first use."""
from __future__ import annotations

import contextlib
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...utils.atomic_io import atomic_write_text
from ..io import write_image, write_multilabel_mask
from ..metainfo import AOI_CLASSES
from .layout import FamilyLayout, check_size_range, make_family_layout
from .render import render_sample
from .stats import OverlapCounter, has_black_border

__all__ = ['MANIFEST_NAME', 'MANIFEST_VERSION', 'LABELLED_SPLITS', 'generate_synthetic_aoi',
           'ensure_synthetic_aoi', 'maybe_generate_synthetic']

MANIFEST_NAME = 'synthetic_aoi.json'
MANIFEST_VERSION = 1
LABELLED_SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
_SPLIT_CODES = dict(train=0, val=1, test=2, pretrain=3)


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f'{name} must be a non-negative integer, got {value!r}')
    return int(value)


def _write_pair(folder: str, stem: str, img: np.ndarray) -> None:
    # durable=False: the whole tree is renamed into place when complete (no per-file fsync)
    for b in (0, 1):
        write_image(osp.join(folder, f'{stem}_buffer{b}.png'),
                    np.ascontiguousarray(img[:, :, b]), durable=False)


def _generate_into(root: str, counts: Dict[str, int], families: List[FamilyLayout],
                   seed: int, progress: bool) -> dict:
    """Render and write every split into ``root``; return the statistics."""
    from tqdm import tqdm

    per_split = {}
    sizes: List[Tuple[int, int]] = []
    bordered = 0
    all_counter = OverlapCounter(len(AOI_CLASSES))
    bar = tqdm(total=sum(counts.values()), desc='synthetic AOI', unit='img',
               disable=not progress)
    try:
        for split in (*LABELLED_SPLITS, 'pretrain'):
            counter = OverlapCounter(len(AOI_CLASSES))
            for i in range(counts[split]):
                fam = families[i % len(families)]
                rng = np.random.default_rng([seed, 2, _SPLIT_CODES[split], i])
                img, mask = render_sample(fam, rng)
                sizes.append(img.shape[:2])
                bordered += has_black_border(img)
                if split == 'pretrain':
                    _write_pair(osp.join(root, 'pretrain', fam.name), f'{fam.name}_pre{i:04d}',
                                img)
                else:
                    stem = f'{fam.name}_{split}{i:04d}'
                    _write_pair(osp.join(root, 'images', split), stem, img)
                    write_multilabel_mask(osp.join(root, 'labels', split, f'{stem}.png'), mask,
                                          durable=False)
                    counter.add(mask)
                    all_counter.add(mask)
                bar.update(1)
            if split != 'pretrain':
                per_split[split] = dict(images=counts[split], **counter.stats(AOI_CLASSES))
    finally:
        bar.close()
    hw = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    return dict(
        splits=per_split,
        labelled=all_counter.stats(AOI_CLASSES),
        image_sizes=dict(min_hw=hw.min(0).tolist() if len(hw) else None,
                         max_hw=hw.max(0).tolist() if len(hw) else None,
                         black_border_share=round(bordered / max(len(hw), 1), 6)))


def _move_into_place(tmp: str, out_root: str, overwrite: bool) -> None:
    if osp.isdir(out_root) and not os.listdir(out_root):
        os.rmdir(out_root)
    if osp.lexists(out_root):
        if not overwrite:
            raise FileExistsError(f'{out_root} appeared while the synthetic benchmark was '
                                  f'being generated; refusing to overwrite it')
        trash = tempfile.mkdtemp(prefix=f'.{osp.basename(out_root)}.old-',
                                 dir=osp.dirname(out_root))
        os.replace(out_root, osp.join(trash, 'old'))
        os.replace(tmp, out_root)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out_root)


def _check_out_root(out_root: str, overwrite: bool) -> str:
    """Absolute ``out_root``; refuse a file or (unless ``overwrite``) a non-empty folder."""
    out_root = osp.abspath(out_root)
    if osp.lexists(out_root) and not osp.isdir(out_root):
        raise FileExistsError(f'{out_root} exists and is not a folder; cannot generate the '
                              f'synthetic AOI benchmark there')
    if osp.isdir(out_root) and os.listdir(out_root) and not overwrite:
        raise FileExistsError(f'{out_root} exists and is not empty; refusing to overwrite it '
                              f'(pass overwrite=True / --overwrite, or choose another folder)')
    return out_root


def _manifest(counts: Dict[str, int], families: List[FamilyLayout], size_range: Tuple[int, int],
              single_device: bool, seed: int, stats: dict) -> dict:
    """The JSON manifest: parameters, counts, layout, families and statistics."""
    return dict(
        format='aoissl_mm synthetic AOI benchmark', version=MANIFEST_VERSION,
        parameters=dict(num_train=counts['train'], num_val=counts['val'],
                        num_test=counts['test'], num_pretrain=counts['pretrain'],
                        num_families=len(families), size_range=list(size_range),
                        single_device=bool(single_device), seed=seed),
        classes=list(AOI_CLASSES),
        counts=counts,
        layout=dict(images='images/<split>/<stem>_buffer{0,1}.png',
                    labels='labels/<split>/<stem>.png (bit c <=> class c)',
                    pretrain='pretrain/<family>/<stem>_buffer{0,1}.png'),
        families=[f.summary() for f in families],
        **stats)


def generate_synthetic_aoi(out_root: str,
                           num_train: int = 40,
                           num_val: int = 10,
                           num_test: int = 16,
                           num_pretrain: int = 60,
                           num_families: int = 6,
                           size_range: Sequence[int] = (384, 1024),
                           single_device: bool = False,
                           seed: int = 0,
                           progress: bool = True,
                           overwrite: bool = False) -> dict:
    """Generate the synthetic two-light AOI benchmark into ``out_root``.

    Everything is written into a temporary sibling folder that is renamed to
    ``out_root`` at the end, so an interrupted run leaves nothing behind. The
    output is byte-identical for identical arguments. Image ``i`` of a split
    shows family ``i mod num_families``, so all families appear in every split
    (as different renderings).

    Args:
        out_root (str): Folder to create (see :mod:`aoissl_mm.datasets.synthetic`
            for the layout).
        num_train (int): Labelled training images.
        num_val (int): Labelled validation images.
        num_test (int): Labelled test images.
        num_pretrain (int): Unlabelled pre-training images, written to
            ``pretrain/<family>/``.
        num_families (int): Number of device designs.
        size_range (Sequence[int]): (min, max) of an image side; width and
            height are drawn independently.
        single_device (bool): Draw every split from one family (the paper's
            single-device setting); ``num_families`` is then ignored.
        seed (int): Seed of all randomness.
        progress (bool): Show a tqdm progress bar.
        overwrite (bool): Replace a non-empty existing ``out_root``.

    Returns:
        dict: The manifest also written to ``out_root/synthetic_aoi.json``:
        parameters, counts, families, per-split class pixel shares and
        overlap statistics (see :func:`~.stats.overlap_stats`), image-size
        summary.

    Raises:
        ValueError: An argument is out of range.
        FileExistsError: ``out_root`` exists, is not empty and ``overwrite``
            is False, or it is a file.
    """
    counts = dict(train=_check_count('num_train', num_train),
                  val=_check_count('num_val', num_val),
                  test=_check_count('num_test', num_test),
                  pretrain=_check_count('num_pretrain', num_pretrain))
    n_fam = 1 if single_device else _check_count('num_families', num_families)
    if n_fam < 1:
        raise ValueError(f'num_families must be >= 1, got {num_families!r}')
    lo, hi = check_size_range(size_range)
    seed = _check_count('seed', seed)
    out_root = _check_out_root(out_root, overwrite)

    families = [make_family_layout(np.random.default_rng([seed, 1, f]), f, (lo, hi))
                for f in range(n_fam)]
    parent = osp.dirname(out_root)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out_root)}.tmp-', dir=parent)
    try:
        os.chmod(tmp, 0o755)
        stats = _generate_into(tmp, counts, families, seed, progress)
        manifest = _manifest(counts, families, (lo, hi), single_device, seed, stats)
        atomic_write_text(osp.join(tmp, MANIFEST_NAME),
                          json.dumps(manifest, indent=2, sort_keys=True) + '\n')
        _move_into_place(tmp, out_root, overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return manifest


def ensure_synthetic_aoi(data_root: str, **kwargs) -> str:
    """Generate the synthetic benchmark into ``data_root`` unless it is there.

    A no-op when ``data_root/synthetic_aoi.json`` exists. If several
    processes race, the first to finish wins and the others return its data.

    Args:
        data_root (str): Data root of the configs.
        **kwargs: Passed to :func:`generate_synthetic_aoi`.

    Returns:
        str: ``data_root``.
    """
    manifest = osp.join(data_root, MANIFEST_NAME)
    if osp.isfile(manifest):
        return data_root
    from mmengine.logging import print_log
    print_log(f'aoissl_mm: no data in {osp.abspath(data_root)}; generating the synthetic '
              f'AOI benchmark there ({kwargs or "default arguments"})', logger='current')
    try:
        generate_synthetic_aoi(data_root, **kwargs)
    except OSError:
        if osp.isfile(manifest):   # another process generated it meanwhile
            return data_root
        raise
    return data_root


def maybe_generate_synthetic(data_root: Optional[str], synthetic: Optional[dict],
                             marker: str) -> None:
    """Generate the synthetic benchmark if ``data_root`` is its root and is empty.

    Called by the datasets with their ``synthetic`` argument. Nothing happens
    when ``synthetic`` is None, when ``data_root`` is not the synthetic root
    (a user's own data, or a typo, is never generated into), or when
    ``data_root/marker`` exists already.

    Args:
        data_root (str, optional): The dataset's data root.
        synthetic (dict, optional): ``dict(data_root=..., **generator_kwargs)``;
            the keyword arguments go to :func:`ensure_synthetic_aoi`.
        marker (str): Sub-folder whose presence means the data is there
            (e.g. ``'images'`` or ``'pretrain'``).

    Raises:
        KeyError: ``synthetic`` has no ``data_root``.
    """
    if synthetic is None or not data_root:
        return
    synthetic = dict(synthetic)
    if 'data_root' not in synthetic:
        raise KeyError("'synthetic' needs 'data_root' (the folder the synthetic benchmark "
                       "is generated into)")
    root = synthetic.pop('data_root')
    if osp.normpath(root) != osp.normpath(data_root):
        return
    if not osp.isdir(osp.join(data_root, marker)):
        # resolved through the package at call time, as before the move, so
        # that replacing ``aoissl_mm.datasets.synthetic.ensure_synthetic_aoi``
        # (e.g. in a test) takes effect
        from aoissl_mm.datasets import synthetic as package
        package.ensure_synthetic_aoi(data_root, **synthetic)
