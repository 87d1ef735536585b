"""From per-class scores to multi-label masks: the one threshold rule.

Every multi-label prediction of the package goes through
:func:`threshold_scores`: the fine-tuned segmentor and its test-time
augmentation (``score >= threshold`` on sigmoid probabilities, AOI-SSL spec
§7.2), the heads' training accuracy (with the segmentor's thresholds) and the
retrieval segmentor (``score > threshold`` on transferred label scores, spec
§8.2). :func:`check_thresholds` validates a configured threshold once, and
:func:`restore_geometry` undoes the test pipeline's padding and flip and
resizes scores to the original image, as mmseg's ``postprocess_result`` does.
"""
from numbers import Real
from typing import Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ['check_thresholds', 'threshold_scores', 'restore_geometry']

ThresholdType = Union[float, Sequence[float]]


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_thresholds(threshold: ThresholdType, num_classes: int,
                     name: str = 'threshold') -> Tuple[float, ...]:
    """Validate a threshold and expand it to one value per class.

    Args:
        threshold (float | Sequence[float]): One value for all classes or one
            per class; each strictly inside (0, 1) (scores are probabilities).
        num_classes (int): Number of classes.
        name (str): Config key named in errors. Defaults to ``'threshold'``.

    Returns:
        Tuple[float, ...]: ``num_classes`` thresholds.

    Raises:
        ValueError: Wrong type, wrong length, or a value outside (0, 1).

    Example:
        >>> check_thresholds(0.4, 3)
        (0.4, 0.4, 0.4)
    """
    if _is_number(threshold):
        values = [float(threshold)] * num_classes
    elif isinstance(threshold, (list, tuple)):
        if len(threshold) != num_classes:
            raise ValueError(f"'{name}' must be a float or a list of {num_classes} floats "
                             f'(one per class, num_classes={num_classes}), got '
                             f'{len(threshold)} values: {list(threshold)}')
        if not all(_is_number(t) for t in threshold):
            raise ValueError(f"'{name}' values must be numbers, got {list(threshold)}")
        values = [float(t) for t in threshold]
    else:
        raise ValueError(f"'{name}' must be a float or a list of {num_classes} floats, "
                         f'got {threshold!r}')
    for value in values:
        if not 0.0 < value < 1.0:
            raise ValueError(f"'{name}' values are probabilities and must lie strictly "
                             f'inside (0, 1), got {values}')
    return tuple(values)


def threshold_scores(scores: Tensor, thresholds: Sequence[float], strict: bool = False) -> Tensor:
    """Per-class thresholding of scores in [0, 1].

    Args:
        scores (Tensor): Probabilities (or transferred label scores) with the
            class axis third from the end: (C, H, W) or (N, C, H, W).
        thresholds (Sequence[float]): One threshold per class.
        strict (bool): ``score > threshold`` when True (retrieval, spec §8.2),
            ``score >= threshold`` when False (fine-tuned segmentor, spec
            §7.2). Defaults to False.

    Returns:
        Tensor: uint8 {0, 1} masks of the shape of ``scores``.

    Raises:
        ValueError: The class axis does not have ``len(thresholds)`` entries.
    """
    if scores.dim() < 3 or scores.shape[-3] != len(thresholds):
        raise ValueError(f'scores must be (..., C, H, W) with C = {len(thresholds)} (one '
                         f'threshold per class), got shape {tuple(scores.shape)}')
    thr = torch.as_tensor(thresholds, dtype=torch.float32, device=scores.device).view(-1, 1, 1)
    scores = scores.float()
    return (scores > thr if strict else scores >= thr).to(torch.uint8)


def restore_geometry(scores: Tensor, img_meta: dict, align_corners: bool = False) -> Tensor:
    """Undo padding and flip of one image's scores and resize to ``ori_shape``.

    The same steps, in the same order, as mmseg's
    ``EncoderDecoder.postprocess_result``: remove ``img_padding_size`` (or
    ``padding_size``), flip back, bilinear resize to ``ori_shape``.

    Args:
        scores (Tensor): Scores of one image, (C, H, W).
        img_meta (dict): Its metainfo.
        align_corners (bool): Passed to the resize. Defaults to False.

    Returns:
        Tensor: Scores (C, H_ori, W_ori).

    Raises:
        ValueError: ``flip`` set with an unknown ``flip_direction``.
    """
    from mmseg.models.utils import resize
    height, width = scores.shape[-2:]
    padding = img_meta.get('img_padding_size', img_meta.get('padding_size', [0, 0, 0, 0]))
    pad_left, pad_right, pad_top, pad_bottom = padding
    out = scores[None, :, pad_top:height - pad_bottom, pad_left:width - pad_right]
    if img_meta.get('flip', False):
        direction = img_meta.get('flip_direction')
        if direction == 'horizontal':
            out = out.flip(dims=(3, ))
        elif direction == 'vertical':
            out = out.flip(dims=(2, ))
        else:
            raise ValueError(f"'flip_direction' must be 'horizontal' or 'vertical' "
                             f'when flip is set, got {direction!r}')
    out = resize(out, size=img_meta['ori_shape'], mode='bilinear',
                 align_corners=align_corners, warning=False)
    return out[0]
