"""Patch masks in token order and the k-NN label transfer (AOI-SSL spec §8.2).

A patch memory stores, for each encoder token, the raw ground-truth mask of
the token's p x p pixels (:func:`patchify_masks`, cut row-major in token
order). A query token retrieves its k nearest memory keys (similarities
``s_1 >= ... >= s_k``) and predicts ``sum_j w_j V_j`` (:func:`aggregate_neighbours`)
with either

* similarity weights (PAPER Eq. 5, :func:`similarity_weights`): by default the
  reference's inverse cosine distance ``w_j ∝ 1 / (1 - s_j + eps)``, or the
  paper's literal wording ``w_j ∝ s_j``; or
* attention weights (PAPER Eq. 6, :func:`attention_weights`):
  ``softmax(s / beta)``.

Each class may use its own k (and beta): neighbours come sorted best first, so
one search at ``max(ks)`` serves every class, class c reading only the first
``ks[c]`` neighbours. :func:`unpatchify_scores` puts the per-patch scores back
on the image grid.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = [
    'patchify_masks', 'unpatchify_scores', 'similarity_weights', 'attention_weights',
    'aggregate_neighbours', 'AGGREGATIONS', 'SIMILARITY_MODES', 'DEFAULT_BETA'
]

AGGREGATIONS = ('similarity', 'attention')
SIMILARITY_MODES = ('inverse_distance', 'normalized')
DEFAULT_BETA = 0.02  # spec §8.2: chosen in every logged run


def patchify_masks(masks: Tensor, patch: int) -> Tensor:
    """Cut (B, C, H, W) masks into row-major p x p patches in token order.

    (B, C, h, p, w, p) -> (B, h, w, p, p, C) -> (B, h*w, p*p, C), with
    ``h = H / p`` and ``w = W / p``; token ``i * w + j`` is the patch at grid
    row ``i``, column ``j``. The dtype is kept.

    Args:
        masks (Tensor): (B, C, H, W) masks.
        patch (int): Patch size p.

    Returns:
        Tensor: (B, h*w, p*p, C).

    Raises:
        ValueError: ``masks`` not 4-D, ``patch < 1``, or H or W not a
            multiple of ``patch``.
    """
    if masks.dim() != 4:
        raise ValueError(f'masks must be (B, C, H, W), got shape {tuple(masks.shape)}')
    if patch < 1:
        raise ValueError(f'patch must be >= 1, got {patch}')
    b, c, height, width = masks.shape
    if height % patch or width % patch:
        raise ValueError(f'mask size {height}x{width} is not a multiple of the patch size '
                         f'{patch}')
    h, w = height // patch, width // patch
    x = masks.reshape(b, c, h, patch, w, patch).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, h * w, patch * patch, c)


def unpatchify_scores(scores: Tensor, grid: Tuple[int, int], patch: int) -> Tensor:
    """Inverse of :func:`patchify_masks`: (B, N, p*p, C) -> (B, C, h*p, w*p).

    Args:
        scores (Tensor): (B, N, p*p, C) per-patch scores, N = h * w.
        grid (Tuple[int, int]): Token grid (h, w).
        patch (int): Patch size p.

    Returns:
        Tensor: (B, C, h*p, w*p).

    Raises:
        ValueError: ``scores`` not 4-D or its N / p*p not matching ``grid`` /
            ``patch``.
    """
    if scores.dim() != 4:
        raise ValueError(f'scores must be (B, N, p*p, C), got shape {tuple(scores.shape)}')
    h, w = int(grid[0]), int(grid[1])
    b, n, units, c = scores.shape
    if n != h * w or units != patch * patch:
        raise ValueError(f'scores of shape {tuple(scores.shape)} do not match grid {h}x{w} '
                         f'(N={h * w}) and patch {patch} (p*p={patch * patch})')
    x = scores.reshape(b, h, w, patch, patch, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, c, h * patch, w * patch)


def _check_sims(sims: Tensor) -> Tensor:
    if sims.dim() != 2 or sims.shape[1] < 1:
        raise ValueError(f'sims must be (M, k) with k >= 1, got shape {tuple(sims.shape)}')
    return sims.float().clamp(max=1.0)


def similarity_weights(sims: Tensor, mode: str = 'inverse_distance',
                       eps: float = 1e-8) -> Tensor:
    """Similarity-based neighbour weights (PAPER Eq. 5), normalised over k.

    Similarities are first clamped to ``<= 1`` (a cosine above 1 is float
    rounding; unclamped it would make the reference's distance negative).

    * ``'inverse_distance'`` (the reference, the default):
      ``w_j = [1 / (1 - s_j + eps)] / sum_l [1 / (1 - s_l + eps)]``. An exact
      duplicate (s = 1) weighs ~1/eps and dominates, as in the reference.
      Neighbours with ``s = -inf`` (missing, see
      :meth:`SearchIndex.search <aoissl_mm.models.retrieval.search_index.SearchIndex.search>`)
      get weight 0.
    * ``'normalized'`` (the paper's literal wording): ``w_j = s_j / sum_l s_l``
      with negative similarities clamped to 0 first; a row whose clamped sum is
      0 (every neighbour at cosine <= 0) falls back to uniform weights 1/k.

    Args:
        sims (Tensor): (M, k) similarities.
        mode (str): ``'inverse_distance'`` or ``'normalized'``.
        eps (float): The reference's 1e-8 in the inverse distance.

    Returns:
        Tensor: (M, k) float32 weights, each row summing to 1.
    """
    s = _check_sims(sims)
    if mode == 'inverse_distance':
        inv = 1.0 / (1.0 - s + eps)
        return inv / inv.sum(dim=1, keepdim=True)
    if mode == 'normalized':
        s = s.clamp(min=0.0)
        total = s.sum(dim=1, keepdim=True)
        uniform = torch.full_like(s, 1.0 / s.shape[1])
        return torch.where(total > 0, s / total.clamp(min=torch.finfo(s.dtype).tiny), uniform)
    raise ValueError(f'similarity mode must be one of {SIMILARITY_MODES}, got {mode!r}')


def attention_weights(sims: Tensor, beta: float) -> Tensor:
    """Attention neighbour weights (PAPER Eq. 6): ``softmax(s / beta)`` over k.

    Similarities are clamped to ``<= 1`` first, as in :func:`similarity_weights`.

    Args:
        sims (Tensor): (M, k) similarities.
        beta (float): Temperature, > 0 (the reference uses 0.02).

    Returns:
        Tensor: (M, k) float32 weights.
    """
    if not beta > 0:
        raise ValueError(f'beta must be > 0, got {beta}')
    return torch.softmax(_check_sims(sims) / float(beta), dim=1)


def _per_class(name: str, value: Union[Sequence, float, int], num_classes: int) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != num_classes:
            raise ValueError(f'{name} must have one value per class ({num_classes}), got '
                             f'{len(value)}: {list(value)}')
        return list(value)
    return [value] * num_classes


def aggregate_neighbours(sims: Tensor, values: Tensor, ks: Union[Sequence[int], int],
                         aggregation: str = 'similarity',
                         betas: Optional[Union[Sequence[float], float]] = None,
                         similarity_mode: str = 'inverse_distance') -> Tensor:
    """Transfer neighbour labels: ``y[m, :, c] = sum_{j < ks[c]} w_j values[m, j, :, c]``.

    Neighbours must come sorted best first (as every search of this package
    returns them): class ``c`` reads only the first ``ks[c]`` of them, so one
    search at ``max(ks)`` serves all classes. Weights are computed once per
    distinct (k, beta).

    Args:
        sims (Tensor): (M, K) similarities, best first.
        values (Tensor): (M, K, P, C) neighbour values (any real dtype; used as
            float32).
        ks (Sequence[int] | int): Neighbours per class, each in [1, K]; one int
            for all classes.
        aggregation (str): ``'similarity'`` (Eq. 5) or ``'attention'`` (Eq. 6).
        betas (Sequence[float] | float, optional): Attention temperature per
            class (unused by ``'similarity'``). Defaults to 0.02 for all.
        similarity_mode (str): ``'inverse_distance'`` or ``'normalized'``, see
            :func:`similarity_weights`.

    Returns:
        Tensor: (M, P, C) float32 scores.

    Raises:
        ValueError: Shapes that do not agree, a k outside [1, K], a list of ks
            or betas not of length C, an unknown aggregation or mode.
    """
    if sims.dim() != 2 or values.dim() != 4 or tuple(values.shape[:2]) != tuple(sims.shape):
        raise ValueError(f'expected sims (M, K) and values (M, K, P, C) with the same M, K; got '
                         f'sims {tuple(sims.shape)} and values {tuple(values.shape)}')
    if aggregation not in AGGREGATIONS:
        raise ValueError(f'aggregation must be one of {AGGREGATIONS}, got {aggregation!r}')
    m, big_k, units, num_classes = values.shape
    ks = [int(k) for k in _per_class('ks', ks, num_classes)]
    betas = _per_class('betas', DEFAULT_BETA if betas is None else betas, num_classes)
    for k in ks:
        if not 1 <= k <= big_k:
            raise ValueError(f'every k must be in [1, {big_k}] (the neighbours searched), '
                             f'got ks={ks}')
    out = values.new_empty((m, units, num_classes), dtype=torch.float32)
    groups = {}
    for c, (k, beta) in enumerate(zip(ks, betas)):
        key = (k, float(beta)) if aggregation == 'attention' else (k, None)
        groups.setdefault(key, []).append(c)
    for (k, beta), classes in groups.items():
        s = sims[:, :k]
        w = (attention_weights(s, beta) if aggregation == 'attention' else
             similarity_weights(s, similarity_mode))
        v = values[:, :k, :, classes].float()
        out[:, :, classes] = torch.einsum('mk,mkpc->mpc', w.to(v.device), v)
    return out
