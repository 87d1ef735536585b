"""Block-wise token masks for iBOT (spec §6), built on mmpretrain's BEiT block placement.

Unregistered helper of :class:`~aoissl_mm.datasets.transforms.AOIMultiCrop`.
"""
import math
from typing import Optional, Tuple

import numpy as np
from mmpretrain.datasets.transforms import BEiTMaskGenerator


class _BlockPlacer(BEiTMaskGenerator):
    """mmpretrain's BEiT block placement with every grid position reachable.

    mmpretrain 1.2.0 ports BEiT's ``random.randint(0, H - h)`` (inclusive)
    as ``np.random.randint(0, H - h)`` (exclusive), so a block never touches
    the last row or column of the grid: on the 4 x 4 grid of FasterViT-0 at
    128 px, 7 of the 16 tokens were never masked. :meth:`_mask` is that
    method with the inclusive range of BEiT and iBOT; everything else is
    :class:`BEiTMaskGenerator`'s.
    """

    def _mask(self, mask: np.ndarray, max_mask_patches: int) -> int:
        """Add one block of at most ``max_mask_patches`` new tokens (10 attempts).

        Args:
            mask (np.ndarray): The ``(h, w)`` int mask, updated in place.
            max_mask_patches (int): Most new tokens the block may add.

        Returns:
            int: The number of tokens masked (0 if no attempt fitted).
        """
        delta = 0
        for _ in range(10):
            target_area = np.random.uniform(self.min_num_patches, max_mask_patches)
            aspect_ratio = math.exp(np.random.uniform(*self.log_aspect_ratio))
            h = int(round(math.sqrt(target_area * aspect_ratio)))
            w = int(round(math.sqrt(target_area / aspect_ratio)))
            if w < self.width and h < self.height:
                top = np.random.randint(0, self.height - h + 1)
                left = np.random.randint(0, self.width - w + 1)
                window = mask[top:top + h, left:left + w]
                new = h * w - int(window.sum())
                if 0 < new <= max_mask_patches:
                    window[...] = 1
                    delta += new
                if delta > 0:
                    break
        return delta


def default_min_block(grid_hw: Tuple[int, int]) -> int:
    """Smallest block area in tokens: ``(min(h, w) // 3) ** 2``, at least 1 (spec §6).

    16 tokens on a 14 x 14 grid (ViT-Tiny at 224 px), 4 on a 7 x 7 grid
    (FasterViT-0 at 224 px).
    """
    return max((min(grid_hw) // 3)**2, 1)


def block_mask(grid_hw: Tuple[int, int], num_masked: int,
               min_block: Optional[int] = None) -> np.ndarray:
    """A boolean ``(h, w)`` mask made of rectangular blocks (BEiT / iBOT).

    Blocks are added until ``num_masked`` tokens are masked or no block can be
    placed. Each block is placed by mmpretrain's
    :class:`~mmpretrain.datasets.transforms.BEiTMaskGenerator` rule (area
    ~ U(``min_block``, remaining), aspect ratio log-uniform in [0.3, 1/0.3],
    up to 10 placement attempts, accepted only if it adds between 1 and
    ``remaining`` new tokens), at any position of the grid (BEiT's rule;
    mmpretrain's port never reaches the last row and column, see
    :class:`_BlockPlacer`). mmpretrain's own ``transform`` loops until the
    exact count is reached, which never ends when no block fits (e.g. one
    token left and every draw overlaps); iBOT's loop, used here, stops at the
    first round that adds nothing, so the mask may hold fewer tokens than asked.

    Randomness comes from numpy's global RNG.

    Args:
        grid_hw (tuple[int, int]): Token grid ``(h, w)``.
        num_masked (int): Target number of masked tokens (clipped to
            ``[0, h * w]``).
        min_block (int, optional): Smallest block area in tokens; None uses
            :func:`default_min_block`.

    Returns:
        np.ndarray: Boolean ``(h, w)`` mask, True = masked.
    """
    h, w = int(grid_hw[0]), int(grid_hw[1])
    if h < 1 or w < 1:
        raise ValueError(f'block_mask: the token grid must be at least 1 x 1, got {grid_hw}')
    target = int(min(max(num_masked, 0), h * w))
    low = default_min_block((h, w)) if min_block is None else max(int(min_block), 1)
    mask = np.zeros((h, w), dtype=int)
    if target == 0:
        return mask.astype(bool)
    placer = _BlockPlacer(input_size=(h, w), num_masking_patches=target, min_num_patches=low)
    count = 0
    while count < target:
        delta = placer._mask(mask, target - count)
        if delta == 0:
            break
        count += delta
    return mask.astype(bool)
