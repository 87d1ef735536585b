"""The AOI "domain-specific" augmentation policy (spec §1.5), 2-channel safe."""
import math
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
from mmseg.registry import TRANSFORMS

from . import functional as F

Range = Tuple[float, float]

#: Names accepted in ``AOIAugment(transforms=...)``, in the spec's order.
AOI_AUGMENT_OPS = ('vflip', 'hflip', 'blur', 'contrast', 'noise', 'rot90', 'scale', 'rotate',
                   'shear', 'gamma')
#: Ops that change only ``img`` (masks untouched).
PHOTOMETRIC_OPS = frozenset({'blur', 'contrast', 'noise', 'gamma'})
#: Rows per block when adding noise (bounds the float64 temporary).
_NOISE_ROWS = 256


def _check_range(value: Sequence[float], name: str, low: Optional[float] = None,
                 low_inclusive: bool = True) -> Range:
    """Validate a ``(lo, hi)`` range with ``lo <= hi`` and an optional lower bound."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, (int, float, np.integer, np.floating))
                    and not isinstance(v, bool) for v in value)):
        raise ValueError(f'{name!r} must be a (low, high) pair of numbers, got {value!r}')
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f'{name!r} must satisfy low <= high (finite), got {value!r}')
    if low is not None and (lo < low or (not low_inclusive and lo == low)):
        op = '>=' if low_inclusive else '>'
        raise ValueError(f'{name!r} values must be {op} {low}, got {value!r}')
    return lo, hi


@TRANSFORMS.register_module()
@PRETRAIN_TRANSFORMS.register_module()
class AOIAugment(BaseTransform):
    """Pad, then apply ``n`` randomly chosen AOI augmentations (spec §1.5).

    The image is first zero-padded (centred) to at least ``pad_to``. Then ``n``
    ops are drawn uniformly *with replacement* from ``transforms`` and each
    drawn op is always applied, in the drawn order (albumentations
    ``SomeOf(n, replace=True)`` with equal probabilities):

    - ``vflip`` / ``hflip``: flip up-down / left-right.
    - ``blur``: Gaussian blur, sigma ~ U(``blur_sigma``), odd kernel size from
      ``blur_kernel_sizes`` with ``blur_kernel_probs`` (sigma 0: OpenCV
      derives it from the kernel size).
    - ``contrast``: multiply by alpha ~ U(``contrast_range``) about 0, clip.
    - ``noise``: zero-mean Gaussian noise, variance ~ U(``noise_var_range``)
      in 0-255 grey levels (scaled by 65535/255 for uint16), drawn
      independently per pixel and channel, then clipped.
    - ``rot90``: rotate by k x 90 degrees, k uniform in {0, 1, 2, 3}.
    - ``scale``: affine scaling, x and y factors drawn independently from
      ``scale_range``.
    - ``rotate``: affine rotation by an angle ~ U(``rotate_range``) degrees.
    - ``shear``: affine shear, x and y angles drawn independently from
      ``shear_range`` degrees.
    - ``gamma``: ``out = max * (img / max) ** gamma``, gamma ~ U(``gamma_range``).

    Affines act about the image centre and keep the image size: bilinear for
    the image, nearest for every mask, ``pad_val`` / ``seg_pad_val`` fill.
    Flips, rot90 and affines move the masks in ``seg_fields`` with the image;
    photometric ops (blur, contrast, noise, gamma) touch only ``img``. Every
    op is done with numpy/OpenCV (never Pillow), keeps the dtype (uint8 or
    uint16) and the channel count. Randomness comes from numpy's global RNG.

    Required keys: ``img`` (H x W x C uint8/uint16).
    Modified keys: ``img``, ``img_shape``, every key in ``seg_fields``.
    Added keys: ``aoi_aug_ops`` (list of the op names applied, in order).

    Args:
        n (int): Number of ops drawn per call (with replacement). Defaults to 3.
        pad_to (int | tuple[int, int], optional): Minimum ``(h, w)`` after the
            centred padding; None disables padding. Defaults to 512.
        transforms (Sequence[str]): Op names to draw from (see above).
            Defaults to all ten.
        blur_sigma (tuple[float, float]): Blur sigma range. Defaults to (0, 0.75).
        blur_kernel_sizes (Sequence[int]): Odd kernel sizes. Defaults to (3, 5, 7).
        blur_kernel_probs (Sequence[float]): Probabilities of the kernel sizes.
            Defaults to (0.2, 0.4, 0.4).
        contrast_range (tuple[float, float]): Contrast factor range.
            Defaults to (0.8, 1.2).
        noise_var_range (tuple[float, float]): Noise variance range in 0-255
            units. Defaults to (0.05, 12.75).
        scale_range (tuple[float, float]): Affine scale range. Defaults to (0.5, 2.0).
        rotate_range (tuple[float, float]): Rotation range in degrees.
            Defaults to (-45, 45).
        shear_range (tuple[float, float]): Shear range in degrees. Defaults to (-8, 8).
        gamma_range (tuple[float, float]): Gamma range. Defaults to (0.8, 1.2).
        pad_val (int): Image padding / affine fill value. Defaults to 0.
        seg_pad_val (int): Mask padding / affine fill value. Defaults to 0.
    """

    def __init__(self,
                 n: int = 3,
                 pad_to: Optional[Union[int, Tuple[int, int]]] = 512,
                 transforms: Sequence[str] = AOI_AUGMENT_OPS,
                 blur_sigma: Range = (0.0, 0.75),
                 blur_kernel_sizes: Sequence[int] = (3, 5, 7),
                 blur_kernel_probs: Sequence[float] = (0.2, 0.4, 0.4),
                 contrast_range: Range = (0.8, 1.2),
                 noise_var_range: Range = (0.05, 12.75),
                 scale_range: Range = (0.5, 2.0),
                 rotate_range: Range = (-45.0, 45.0),
                 shear_range: Range = (-8.0, 8.0),
                 gamma_range: Range = (0.8, 1.2),
                 pad_val: int = 0,
                 seg_pad_val: int = 0) -> None:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ValueError(f"'n' must be an int >= 0, got {n!r}")
        if isinstance(transforms, str):
            transforms = (transforms, )
        transforms = tuple(transforms)
        unknown = [t for t in transforms if t not in AOI_AUGMENT_OPS]
        if unknown:
            raise ValueError(f"'transforms' has unknown name(s) {unknown}; valid names are "
                             f'{list(AOI_AUGMENT_OPS)}')
        if n > 0 and not transforms:
            raise ValueError(f"'transforms' must name at least one op when n={n} > 0")
        self.n = int(n)
        self.pad_to = None if pad_to is None else F.to_hw(pad_to, 'pad_to')
        self.transforms = transforms
        self.blur_sigma = _check_range(blur_sigma, 'blur_sigma', low=0.0)
        sizes = tuple(blur_kernel_sizes)
        if not sizes or any(not isinstance(k, (int, np.integer)) or k <= 0 or k % 2 == 0
                            for k in sizes):
            raise ValueError("'blur_kernel_sizes' must be positive odd ints, got "
                             f'{blur_kernel_sizes!r}')
        probs = tuple(float(p) for p in blur_kernel_probs)
        if len(probs) != len(sizes) or any(p < 0 for p in probs) or abs(sum(probs) - 1) > 1e-6:
            raise ValueError(f"'blur_kernel_probs' must be {len(sizes)} non-negative numbers "
                             f'summing to 1 (one per kernel size), got {blur_kernel_probs!r}')
        self.blur_kernel_sizes = tuple(int(k) for k in sizes)
        self.blur_kernel_probs = probs
        self.contrast_range = _check_range(contrast_range, 'contrast_range', low=0.0)
        self.noise_var_range = _check_range(noise_var_range, 'noise_var_range', low=0.0)
        self.scale_range = _check_range(scale_range, 'scale_range', low=0.0, low_inclusive=False)
        self.rotate_range = _check_range(rotate_range, 'rotate_range')
        self.shear_range = _check_range(shear_range, 'shear_range', low=-89.0)
        if self.shear_range[1] >= 90:
            raise ValueError(f"'shear_range' must lie in (-90, 90) degrees, got {shear_range!r}")
        self.gamma_range = _check_range(gamma_range, 'gamma_range', low=0.0, low_inclusive=False)
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    # geometric helpers -------------------------------------------------
    @staticmethod
    def _apply_all(results: dict, keys: List[str],
                   fn: Callable[[np.ndarray], np.ndarray]) -> None:
        results['img'] = fn(results['img'])
        for key in keys:
            results[key] = fn(results[key])

    def _affine(self, results: dict, keys: List[str], linear: np.ndarray) -> None:
        matrix = F.centered_affine_matrix(results['img'].shape[:2], linear)
        results['img'] = F.warp_affine(results['img'], matrix, 'bilinear', self.pad_val)
        for key in keys:
            results[key] = F.warp_affine(results[key], matrix, 'nearest', self.seg_pad_val)

    # ops -----------------------------------------------------------------
    def _vflip(self, results: dict, keys: List[str]) -> None:
        self._apply_all(results, keys, lambda a: F.flip(a, 'vertical'))

    def _hflip(self, results: dict, keys: List[str]) -> None:
        self._apply_all(results, keys, lambda a: F.flip(a, 'horizontal'))

    def _rot90(self, results: dict, keys: List[str]) -> None:
        k = int(np.random.randint(0, 4))
        self._apply_all(results, keys, lambda a: F.rot90(a, k))

    def _scale(self, results: dict, keys: List[str]) -> None:
        sx = np.random.uniform(*self.scale_range)
        sy = np.random.uniform(*self.scale_range)
        self._affine(results, keys, F.scale_matrix(sx, sy))

    def _rotate(self, results: dict, keys: List[str]) -> None:
        angle = np.random.uniform(*self.rotate_range)
        self._affine(results, keys, F.rotation_matrix(angle))

    def _shear(self, results: dict, keys: List[str]) -> None:
        shx = np.random.uniform(*self.shear_range)
        shy = np.random.uniform(*self.shear_range)
        self._affine(results, keys, F.shear_matrix(shx, shy))

    def _blur(self, results: dict, keys: List[str]) -> None:
        sigma = float(np.random.uniform(*self.blur_sigma))
        idx = int(np.random.choice(len(self.blur_kernel_sizes), p=self.blur_kernel_probs))
        results['img'] = F.gaussian_blur(results['img'], self.blur_kernel_sizes[idx], sigma)

    @staticmethod
    def _lut(img: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        levels = np.arange(int(F.dtype_max(img.dtype)) + 1, dtype=np.float64)
        return np.take(F.clip_cast(fn(levels), img.dtype), img)

    def _contrast(self, results: dict, keys: List[str]) -> None:
        alpha = float(np.random.uniform(*self.contrast_range))
        results['img'] = self._lut(results['img'], lambda v: v * alpha)

    def _gamma(self, results: dict, keys: List[str]) -> None:
        gamma = float(np.random.uniform(*self.gamma_range))
        vmax = F.dtype_max(results['img'].dtype)
        results['img'] = self._lut(results['img'], lambda v: vmax * (v / vmax)**gamma)

    def _noise(self, results: dict, keys: List[str]) -> None:
        img = results['img']
        var = float(np.random.uniform(*self.noise_var_range))
        sigma = math.sqrt(var) * F.dtype_max(img.dtype) / 255.0
        out = np.empty_like(img)
        for start in range(0, img.shape[0], _NOISE_ROWS):
            block = img[start:start + _NOISE_ROWS]
            noisy = block + np.random.normal(0.0, sigma, size=block.shape)
            out[start:start + _NOISE_ROWS] = F.clip_cast(noisy, img.dtype)
        results['img'] = out

    # main ----------------------------------------------------------------
    def transform(self, results: dict) -> dict:
        """Pad and apply ``n`` random AOI ops to ``results`` (see class doc)."""
        keys = F.check_img_and_masks(results, 'AOIAugment')
        img = results['img']
        if img.dtype not in (np.uint8, np.uint16):
            raise TypeError(f"AOIAugment: results['img'] must be uint8 or uint16, got {img.dtype}")
        if self.pad_to is not None:
            results['img'], _ = F.pad_center(img, self.pad_to, self.pad_val)
            for key in keys:
                results[key], _ = F.pad_center(results[key], self.pad_to, self.seg_pad_val)
        applied: List[str] = []
        if self.n > 0:
            chosen = np.random.randint(0, len(self.transforms), size=self.n)
            for idx in chosen:
                name = self.transforms[int(idx)]
                getattr(self, f'_{name}')(results, keys)
                applied.append(name)
        results['img_shape'] = results['img'].shape[:2]
        results['aoi_aug_ops'] = applied
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(n={self.n}, pad_to={self.pad_to}, '
                f'transforms={self.transforms}, blur_sigma={self.blur_sigma}, '
                f'blur_kernel_sizes={self.blur_kernel_sizes}, '
                f'blur_kernel_probs={self.blur_kernel_probs}, '
                f'contrast_range={self.contrast_range}, noise_var_range={self.noise_var_range}, '
                f'scale_range={self.scale_range}, rotate_range={self.rotate_range}, '
                f'shear_range={self.shear_range}, gamma_range={self.gamma_range}, '
                f'pad_val={self.pad_val}, seg_pad_val={self.seg_pad_val})')
