"""Bounded-memory patch sampling, HummingBird style (AOI-SSL spec §8.1).

Per image, keep ``budget`` patches favouring rare classes: with f_c the number
of the image's patches containing class c, a patch scores
``sum_{c present} f_c * u`` with ``u ~ U(0, 1)``, an empty patch scores 1e6,
and the ``budget`` lowest scores are kept.
"""
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

__all__ = ['sample_patches', 'EMPTY_PATCH_SCORE']

EMPTY_PATCH_SCORE = 1e6


def sample_patches(masks: Union[Tensor, np.ndarray], budget: int,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """Indices of the patches of one image to keep in a bounded memory.

    Ties (empty patches, all at 1e6) are broken in a random order drawn from
    ``generator`` (the reference's ``topk`` leaves it unspecified; keeping
    the first ones would favour the top of the image).

    Args:
        masks (Tensor | np.ndarray): (N, P, C) {0, 1} patch masks of one image
            (:func:`~.aggregation.patchify_masks` of it).
        budget (int): Patches to keep (>= 1); all N when ``budget >= N``.
        generator (torch.Generator, optional): A CPU generator for the
            uniform noise and the tie order (the global one when None).

    Returns:
        Tensor: Kept patch indices, int64 on the CPU, ascending.

    Raises:
        ValueError: ``masks`` not 3-D, or ``budget < 1``.
    """
    masks = torch.as_tensor(masks).detach().cpu()
    if masks.dim() != 3:
        raise ValueError(f'masks must be (N, P, C) patch masks, got shape {tuple(masks.shape)}')
    if int(budget) < 1:
        raise ValueError(f'budget must be >= 1, got {budget}')
    n = masks.shape[0]
    if budget >= n:
        return torch.arange(n)
    present = (masks != 0).any(dim=1).double()  # (N, C)
    frequency = present.sum(dim=0)  # f_c: patches containing class c
    noise = torch.rand(n, generator=generator, dtype=torch.float64)
    score = (present * frequency).sum(dim=1) * noise
    score[present.sum(dim=1) == 0] = EMPTY_PATCH_SCORE
    perm = torch.randperm(n, generator=generator)
    order = perm[torch.argsort(score[perm], stable=True)]
    return torch.sort(order[:int(budget)]).values
