"""Class pixel shares and class overlaps of multi-label masks."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from ..metainfo import AOI_CLASSES

__all__ = ['OverlapCounter', 'overlap_stats', 'has_black_border']


class OverlapCounter:
    """Accumulates class pixel counts and class co-occurrence over masks.

    Args:
        num_classes (int): Number of mask channels C.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.total = 0
        self.cooc = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.any_other = np.zeros(num_classes, dtype=np.int64)

    def add(self, mask: np.ndarray) -> None:
        """Count one H x W x C {0, 1} mask.

        Raises:
            ValueError: The mask is not H x W x C.
        """
        if mask.ndim != 3 or mask.shape[2] != self.num_classes:
            raise ValueError(f'expected an H x W x {self.num_classes} mask, got shape '
                             f'{mask.shape}')
        x = (mask.reshape(-1, self.num_classes) > 0).astype(np.float64)
        self.total += x.shape[0]
        self.cooc += np.rint(x.T @ x).astype(np.int64)
        multi = (x.sum(axis=1) > 1).astype(np.float64)
        self.any_other += np.rint(multi @ x).astype(np.int64)

    def stats(self, class_names: Sequence[str]) -> dict:
        """The statistics of everything counted so far (see :func:`overlap_stats`).

        Args:
            class_names (Sequence[str]): C class names.
        """
        names = list(class_names)
        pix = np.diag(self.cooc).astype(np.float64)
        labelled = max(float(pix.sum()), 1.0)

        def ratio(a: float, b: float) -> float:
            return round(float(a) / float(b), 6) if b > 0 else 0.0

        return dict(
            classes=names,
            total_pixels=int(self.total),
            class_pixels={n: int(pix[i]) for i, n in enumerate(names)},
            image_share={n: ratio(pix[i], self.total) for i, n in enumerate(names)},
            class_share={n: ratio(pix[i], labelled) for i, n in enumerate(names)},
            on={a: {b: ratio(self.cooc[i, j], pix[i]) for j, b in enumerate(names) if j != i}
                for i, a in enumerate(names)},
            on_any_other={n: ratio(self.any_other[i], pix[i]) for i, n in enumerate(names)})


def overlap_stats(mask: Union[np.ndarray, Sequence[np.ndarray]],
                  class_names: Optional[Sequence[str]] = None) -> dict:
    """Class pixel shares and how much of each class lies on the others.

    Args:
        mask (np.ndarray | Sequence[np.ndarray]): One H x W x C {0, 1}
            multi-label mask, or several (sizes may differ), pooled.
        class_names (Sequence[str], optional): C names; defaults to
            ``AOI_CLASSES`` (``('wire', 'ball', 'wedge', 'epoxy')``) when C
            is its length, else ``'class0'``, ``'class1'``, ...

    Returns:
        dict: ``total_pixels``; per class ``class_pixels``, ``image_share``
        (of all pixels), ``class_share`` (of all labelled class pixels);
        ``on[a][b]``, the share of class ``a``'s pixels also labelled ``b``;
        and ``on_any_other[a]``, the share of ``a``'s pixels carrying any
        other class.

    Raises:
        ValueError: A mask is not H x W x C, or the masks disagree on C.
    """
    masks = [mask] if isinstance(mask, np.ndarray) else list(mask)
    if not masks:
        raise ValueError('overlap_stats needs at least one mask')
    num_classes = masks[0].shape[-1] if masks[0].ndim == 3 else -1
    if num_classes < 1:
        raise ValueError(f'expected H x W x C masks, got shape {masks[0].shape}')
    if class_names is None:
        class_names = (AOI_CLASSES if num_classes == len(AOI_CLASSES) else
                       [f'class{i}' for i in range(num_classes)])
    if len(class_names) != num_classes:
        raise ValueError(f'{len(class_names)} class names for masks with {num_classes} '
                         f'channels')
    counter = OverlapCounter(num_classes)
    for m in masks:
        counter.add(np.asarray(m))
    return counter.stats(class_names)


def has_black_border(img: np.ndarray) -> bool:
    """True if a full edge row or column of the image is exactly zero.

    Args:
        img (np.ndarray): H x W x C image.
    """
    zero = ~np.any(img > 0, axis=2)
    return bool(zero[0].all() or zero[-1].all() or zero[:, 0].all() or zero[:, -1].all())
