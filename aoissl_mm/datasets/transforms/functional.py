"""Shared, unregistered cv2/numpy helpers for the AOI transforms.

Every helper is safe for 2-channel images (no Pillow anywhere: Pillow treats an
H x W x 2 uint8 array as ``LA`` and zeroes channel 0 where channel 1 is 0) and
for multi-label masks (H x W x C uint8 {0, 1} with any C >= 1). Arrays are
H x W or H x W x C; the layout of the input is kept on output (OpenCV drops a
trailing channel axis of size 1, which is restored here).
"""
import math
from typing import Callable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

#: dtypes that cv2's geometric and filtering functions accept.
_CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
#: OpenCV functions are only relied upon for up to 4 channels; more are split.
_MAX_CV2_CHANNELS = 4

Bbox = Tuple[int, int, int, int]


def to_hw(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    """Normalise an ``int`` or ``(h, w)`` size into a tuple of 2 positive ints.

    Args:
        size (int | Sequence[int]): The size.
        name (str): Argument name used in the error message.

    Returns:
        tuple[int, int]: ``(h, w)``.
    """
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        hw = (int(size), int(size))
    elif (isinstance(size, (tuple, list)) and len(size) == 2
          and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)):
        hw = (int(size[0]), int(size[1]))
    else:
        raise ValueError(f'{name!r} must be an int or a pair of ints (h, w), got {size!r}')
    if hw[0] <= 0 or hw[1] <= 0:
        raise ValueError(f'{name!r} must be positive, got {size!r}')
    return hw


def seg_keys(results: dict) -> List[str]:
    """Keys of the masks that must follow the image geometrically.

    ``results['seg_fields']`` plus ``'gt_seg_map'`` when it is present but not
    listed (so a mask is never silently left misaligned).

    Args:
        results (dict): The pipeline results.

    Returns:
        list[str]: Mask keys present in ``results``.
    """
    keys = list(results.get('seg_fields', []))
    if 'gt_seg_map' in results and 'gt_seg_map' not in keys:
        keys.append('gt_seg_map')
    missing = [k for k in keys if k not in results]
    if missing:
        raise KeyError(f"seg_fields lists {missing} but results has no such key(s)")
    return keys


def check_img_and_masks(results: dict, transform_name: str) -> List[str]:
    """Validate ``results['img']`` and that every mask has the image's size.

    Args:
        results (dict): The pipeline results.
        transform_name (str): Name used in error messages.

    Returns:
        list[str]: The mask keys (see :func:`seg_keys`).
    """
    if 'img' not in results:
        raise KeyError(f"{transform_name} needs results['img'] (an H x W x C image)")
    img = results['img']
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
        got = getattr(img, 'shape', type(img).__name__)
        raise ValueError(f"{transform_name}: results['img'] must be an H x W or H x W x C "
                         f'numpy array, got {got}')
    keys = seg_keys(results)
    for key in keys:
        mask = results[key]
        if not isinstance(mask, np.ndarray) or mask.ndim not in (2, 3):
            got = getattr(mask, 'shape', type(mask).__name__)
            raise ValueError(f"{transform_name}: results[{key!r}] must be an H x W or "
                             f'H x W x C numpy array, got {got}')
        if mask.shape[:2] != img.shape[:2]:
            raise ValueError(f"{transform_name}: results[{key!r}] has size {mask.shape[:2]} but "
                             f"results['img'] has {img.shape[:2]}; expected the same H x W")
    return keys


def _apply_cv2(arr: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a per-channel-independent cv2 function to an array of any layout.

    Restores a trailing channel axis dropped by OpenCV, splits arrays with more
    than 4 channels into chunks, and round-trips ``bool`` / unsupported integer
    dtypes through a supported one.
    """
    orig_dtype = arr.dtype
    work = arr
    if orig_dtype == np.bool_ or orig_dtype == np.int8:
        work = arr.astype(np.uint8) if orig_dtype == np.bool_ else arr.astype(np.int16)
    elif orig_dtype.type not in _CV2_DTYPES:
        if np.issubdtype(orig_dtype, np.integer):
            info = np.iinfo(orig_dtype)
            if info.min >= 0 and info.max <= np.iinfo(np.uint16).max:
                work = arr.astype(np.uint16)
            else:
                work = arr.astype(np.float64)
        else:
            work = arr.astype(np.float64)
    if work.ndim == 2:
        out = fn(np.ascontiguousarray(work))
    else:
        chunks = []
        for start in range(0, work.shape[2], _MAX_CV2_CHANNELS):
            part = np.ascontiguousarray(work[:, :, start:start + _MAX_CV2_CHANNELS])
            res = fn(part)
            if res.ndim == 2:
                res = res[:, :, None]
            chunks.append(res)
        out = chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=2)
    if out.dtype != orig_dtype:
        if np.issubdtype(orig_dtype, np.integer) or orig_dtype == np.bool_:
            out = np.rint(out) if np.issubdtype(out.dtype, np.floating) else out
        out = out.astype(orig_dtype)
    return out


def pad_center(arr: np.ndarray, min_hw: Tuple[int, int],
               value: Union[int, float] = 0) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Pad with a constant so that the array is at least ``min_hw``, centred.

    The extra rows/columns are split evenly; an odd remainder goes to the
    bottom/right (``top = (H' - H) // 2``).

    Args:
        arr (np.ndarray): H x W or H x W x C array.
        min_hw (tuple[int, int]): Minimum output ``(h, w)``.
        value (int | float): Fill value. Defaults to 0.

    Returns:
        tuple[np.ndarray, tuple[int, int]]: The padded array and the
        ``(top, left)`` offset of the original inside it.
    """
    h, w = arr.shape[:2]
    ph, pw = max(min_hw[0] - h, 0), max(min_hw[1] - w, 0)
    top, left = ph // 2, pw // 2
    if ph == 0 and pw == 0:
        return arr, (0, 0)
    widths = [(top, ph - top), (left, pw - left)] + [(0, 0)] * (arr.ndim - 2)
    return np.pad(arr, widths, mode='constant', constant_values=value), (top, left)


def crop(arr: np.ndarray, bbox: Bbox) -> np.ndarray:
    """Crop ``arr[y0:y1, x0:x1]`` (bbox = ``(y0, y1, x0, x1)``), as a contiguous copy."""
    y0, y1, x0, x1 = bbox
    return np.ascontiguousarray(arr[y0:y1, x0:x1])


def flip(arr: np.ndarray, direction: str) -> np.ndarray:
    """Flip ``'horizontal'`` (left-right) or ``'vertical'`` (up-down)."""
    if direction == 'horizontal':
        return np.ascontiguousarray(arr[:, ::-1])
    if direction == 'vertical':
        return np.ascontiguousarray(arr[::-1])
    raise ValueError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")


def rot90(arr: np.ndarray, k: int) -> np.ndarray:
    """Rotate by ``k`` x 90 degrees counter-clockwise in the image plane."""
    return np.ascontiguousarray(np.rot90(arr, k % 4, axes=(0, 1)))


def centered_affine_matrix(hw: Tuple[int, int], linear: np.ndarray) -> np.ndarray:
    """2 x 3 forward affine matrix applying ``linear`` (2 x 2) about the image centre.

    The centre of an H x W image is ``((W - 1) / 2, (H - 1) / 2)`` in pixel
    coordinates, so the centre pixel stays in place.

    Args:
        hw (tuple[int, int]): Image ``(h, w)``.
        linear (np.ndarray): 2 x 2 matrix acting on ``(x, y)`` column vectors.

    Returns:
        np.ndarray: float64 2 x 3 matrix for ``cv2.warpAffine``.
    """
    linear = np.asarray(linear, dtype=np.float64)
    if linear.shape != (2, 2):
        raise ValueError(f'linear must be 2 x 2, got shape {linear.shape}')
    center = np.array([(hw[1] - 1) / 2.0, (hw[0] - 1) / 2.0])
    offset = center - linear @ center
    return np.concatenate([linear, offset[:, None]], axis=1)


def scale_matrix(sx: float, sy: float) -> np.ndarray:
    """2 x 2 matrix scaling x by ``sx`` and y by ``sy``."""
    return np.array([[sx, 0.0], [0.0, sy]], dtype=np.float64)


def rotation_matrix(angle_deg: float) -> np.ndarray:
    """2 x 2 matrix rotating by ``angle_deg`` (counter-clockwise on screen, like cv2)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, s], [-s, c]], dtype=np.float64)


def shear_matrix(shear_x_deg: float, shear_y_deg: float) -> np.ndarray:
    """2 x 2 shear matrix with angles in degrees: ``x' = x + tan(sx) y``, ``y' = y + tan(sy) x``."""
    return np.array([[1.0, math.tan(math.radians(shear_x_deg))],
                     [math.tan(math.radians(shear_y_deg)), 1.0]], dtype=np.float64)


def warp_affine(arr: np.ndarray, matrix: np.ndarray, interpolation: str = 'bilinear',
                border_value: Union[int, float] = 0) -> np.ndarray:
    """Warp with a forward 2 x 3 affine matrix, same output size, constant fill.

    Args:
        arr (np.ndarray): H x W or H x W x C array (any C).
        matrix (np.ndarray): 2 x 3 forward (source -> destination) matrix.
        interpolation (str): ``'bilinear'`` (images) or ``'nearest'`` (masks).
            Defaults to ``'bilinear'``.
        border_value (int | float): Fill value outside the source. Defaults to 0.

    Returns:
        np.ndarray: The warped array, same shape and dtype as ``arr``.
    """
    flags = {'bilinear': cv2.INTER_LINEAR, 'nearest': cv2.INTER_NEAREST}
    if interpolation not in flags:
        raise ValueError(f"interpolation must be one of {sorted(flags)}, got {interpolation!r}")
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 3):
        raise ValueError(f'matrix must be 2 x 3, got shape {matrix.shape}')
    h, w = arr.shape[:2]

    def _warp(part: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(part, matrix, (w, h), flags=flags[interpolation],
                              borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(float(border_value),) * 4)

    return _apply_cv2(arr, _warp)


def gaussian_blur(arr: np.ndarray, ksize: int, sigma: float) -> np.ndarray:
    """Gaussian blur with an odd square kernel; ``sigma == 0`` lets OpenCV derive it.

    Args:
        arr (np.ndarray): H x W or H x W x C image.
        ksize (int): Odd kernel size.
        sigma (float): Standard deviation in pixels (0: from ``ksize``).

    Returns:
        np.ndarray: The blurred array, same shape and dtype.
    """
    if ksize <= 0 or ksize % 2 == 0:
        raise ValueError(f'ksize must be a positive odd int, got {ksize}')
    if sigma < 0:
        raise ValueError(f'sigma must be >= 0, got {sigma}')
    return _apply_cv2(arr, lambda p: cv2.GaussianBlur(p, (ksize, ksize), sigmaX=float(sigma),
                                                      sigmaY=float(sigma),
                                                      borderType=cv2.BORDER_REFLECT_101))


def dtype_max(dtype: np.dtype) -> float:
    """Largest intensity of an integer image dtype (255 for uint8, 65535 for uint16)."""
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise TypeError(f'expected a uint8 or uint16 image, got dtype {dtype}')
    return float(np.iinfo(dtype).max)


def clip_cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round, clip to ``[0, dtype max]`` and cast to the uint8/uint16 ``dtype``."""
    return np.clip(np.rint(values), 0, dtype_max(dtype)).astype(dtype)


def black_fraction(img: np.ndarray, channel: int = 0) -> float:
    """Fraction of pixels whose value in ``channel`` (buffer0 by default) is exactly 0."""
    plane = img if img.ndim == 2 else img[:, :, channel]
    if plane.size == 0:
        return 1.0
    return float(np.count_nonzero(plane == 0)) / plane.size


def sample_bbox_with_black_filter(img: np.ndarray, sampler: Callable[[], Bbox],
                                  black_thr: float, max_tries: int,
                                  channel: int = 0) -> Tuple[Bbox, int]:
    """Draw crop boxes until one is not "black" (§1.7 black-patch filter).

    A box is black when more than ``black_thr`` of its pixels are 0 in
    ``channel``. The first draw is re-sampled at most ``max_tries`` times;
    after that the last draw is accepted.

    Args:
        img (np.ndarray): The (already padded) image the boxes index.
        sampler (Callable[[], Bbox]): Draws one ``(y0, y1, x0, x1)`` box.
        black_thr (float): Maximum accepted zero fraction, in [0, 1].
        max_tries (int): Maximum number of re-draws (>= 0).
        channel (int): Channel tested for zeros. Defaults to 0 (buffer0).

    Returns:
        tuple[Bbox, int]: The accepted box and the number of draws made.
    """
    draws = 0
    bbox = sampler()
    draws += 1
    while black_fraction(crop(img, bbox), channel) > black_thr and draws <= max_tries:
        bbox = sampler()
        draws += 1
    return bbox, draws


def random_window_start(size: int, window: int) -> int:
    """Uniform start in ``[0, size - window]`` drawn with numpy's global RNG."""
    return int(np.random.randint(0, size - window + 1))


def anchored_window_start(anchor: int, size: int, window: int,
                          offset: Optional[int] = None) -> int:
    """Start of a window that contains ``anchor`` at a uniform position, clipped to the image.

    Args:
        anchor (int): Coordinate that must lie inside the window.
        size (int): Image extent along the axis (>= ``window``).
        window (int): Window extent.
        offset (int, optional): Position of ``anchor`` inside the window;
            drawn uniformly from ``[0, window - 1]`` if None.

    Returns:
        int: Window start in ``[0, size - window]``.
    """
    if offset is None:
        offset = int(np.random.randint(0, window))
    return int(min(max(anchor - offset, 0), size - window))
