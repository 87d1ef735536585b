"""Per-channel intensity statistics of a folder of buffer pairs (for Z-scoring)."""
from typing import Optional

import numpy as np

from ..datasets.io import find_buffer_pairs, read_buffer_pair


def compute_image_stats(folder: str,
                        recursive: bool = True,
                        ignore_zero: bool = False,
                        max_images: Optional[int] = None,
                        progress: bool = True) -> dict:
    """Mean and standard deviation per light buffer over every pixel of a folder.

    Values are in the images' own units (0-255 for 8-bit, 0-65535 for 16-bit),
    which is what ``SegDataPreProcessor`` / ``AOISelfSupDataPreprocessor``
    expect for ``mean``/``std``. Accumulates in float64 (exact sums, no
    per-image averaging bias).

    Args:
        folder (str): Folder of ``<stem>_buffer0/1`` pairs.
        recursive (bool): Include sub-folders.
        ignore_zero (bool): Skip pixels that are 0 in both buffers (black borders).
        max_images (int, optional): Use only the first N pairs.
        progress (bool): Show a progress bar.
    """
    pairs = find_buffer_pairs(folder, recursive=recursive)
    if max_images:
        pairs = pairs[:max_images]
    n = 0
    s = np.zeros(2, np.float64)
    ss = np.zeros(2, np.float64)
    dtype = None
    iterator = pairs
    if progress:
        from tqdm import tqdm
        iterator = tqdm(pairs, desc='image statistics', unit='img')
    for _, p0, p1 in iterator:
        img = read_buffer_pair(p0, p1).reshape(-1, 2)
        dtype = dtype or str(img.dtype)
        if ignore_zero:
            img = img[(img != 0).any(axis=1)]
        x = img.astype(np.float64)
        n += x.shape[0]
        s += x.sum(axis=0)
        ss += (x * x).sum(axis=0)
    if n == 0:
        raise ValueError(f'{folder}: no pixels to compute statistics from')
    mean = s / n
    std = np.sqrt(np.maximum(ss / n - mean * mean, 0.0))
    return dict(folder=folder, images=len(pairs), pixels=int(n), dtype=dtype,
                ignore_zero=ignore_zero, mean=[round(float(v), 4) for v in mean],
                std=[round(float(v), 4) for v in std])
