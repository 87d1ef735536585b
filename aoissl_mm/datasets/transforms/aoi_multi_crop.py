"""DINO / iBOT multi-crop for 2-channel AOI images, with per-global-view token masks."""
import math
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

from . import functional as F
from .aoi_augment import AOI_AUGMENT_OPS, AOIAugment, _check_range
from .block_mask import block_mask

_INTERPOLATIONS = {'bicubic': cv2.INTER_CUBIC, 'bilinear': cv2.INTER_LINEAR,
                   'area': cv2.INTER_AREA, 'nearest': cv2.INTER_NEAREST}
#: Largest accepted number of local crops.
MAX_LOCAL_CROPS = 12


def sample_resized_crop_bbox(img_hw: Tuple[int, int], scale: Tuple[float, float],
                             ratio: Tuple[float, float], attempts: int = 10) -> F.Bbox:
    """One random-resized-crop window ``(y0, y1, x0, x1)`` (Inception-style).

    Up to ``attempts`` draws of an area share ~ U(``scale``) and a log-uniform
    aspect ratio (w / h) in ``ratio``; the first window that fits is placed
    uniformly. If none fits, the largest centred window whose aspect ratio
    lies in ``ratio`` is returned. numpy's global RNG.

    Args:
        img_hw (tuple[int, int]): Image ``(h, w)``.
        scale (tuple[float, float]): Range of the crop area as a share of the image.
        ratio (tuple[float, float]): Range of the aspect ratio w / h.
        attempts (int): Number of draws before the fallback. Defaults to 10.

    Returns:
        tuple: ``(y0, y1, x0, x1)``.
    """
    h, w = img_hw
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        area = h * w * np.random.uniform(*scale)
        aspect = math.exp(np.random.uniform(*log_ratio))
        cw = int(round(math.sqrt(area * aspect)))
        ch = int(round(math.sqrt(area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            y0 = F.random_window_start(h, ch)
            x0 = F.random_window_start(w, cw)
            return y0, y0 + ch, x0, x0 + cw
    aspect = w / h
    if aspect < ratio[0]:
        cw, ch = w, min(h, max(1, int(round(w / ratio[0]))))
    elif aspect > ratio[1]:
        ch, cw = h, min(w, max(1, int(round(h * ratio[1]))))
    else:
        ch, cw = h, w
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return y0, y0 + ch, x0, x0 + cw


def resize(arr: np.ndarray, size_hw: Tuple[int, int], interpolation: str) -> np.ndarray:
    """Resize with OpenCV (never Pillow), keeping a trailing channel axis of size 1."""
    out = cv2.resize(np.ascontiguousarray(arr), (size_hw[1], size_hw[0]),
                     interpolation=_INTERPOLATIONS[interpolation])
    if arr.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


@TRANSFORMS.register_module()
class AOIMultiCrop(BaseTransform):
    """2 global + ``num_local`` local crops, AOI-augmented, with iBOT masks (spec §1.6, §1.7, §6).

    Every crop is a random-resized crop of the loaded image (area share
    ~ U(``global_scale``) or U(``local_scale``), aspect ratio log-uniform in
    ``ratio``) resized with OpenCV to ``global_size`` / ``local_size``. A
    window whose buffer0 (channel 0) pixels are more than ``black_thr`` zero
    is re-drawn, at most ``max_tries`` times, then the last window is kept
    (spec §1.7). Each resized crop then gets the AOI policy
    (:class:`AOIAugment` with ``augment`` as its arguments and no padding:
    ``n`` ops drawn with replacement); the second global crop draws from the
    same ops minus ``second_global_exclude`` (the paper's policy: no contrast
    and gamma there).

    With ``mask_patch_size`` set (iBOT), each global crop is masked with
    probability ``mask_prob``: a ratio ~ U(``mask_ratio``) of the
    ``(global_size / mask_patch_size)`` token grid is covered by blocks
    (:func:`~aoissl_mm.datasets.transforms.block_mask.block_mask`); an
    unmasked view gets an all-False mask. Local crops are never masked.

    mmpretrain's ``MultiView`` collects only ``img`` and drops such masks;
    here ``results['mask']`` holds them, and mmpretrain's ``PackInputs``
    turns it into ``data_sample.mask`` (the default collate stacks it to
    ``(B, 2, h, w)``) and the list of crops into one batch per view.

    Required keys: ``img`` (H x W x C uint8 / uint16).
    Modified keys: ``img`` (list: 2 global crops, then the local crops),
    ``img_shape`` (the global size).
    Added keys: ``mask`` (bool ``(2, h, w)``, only with ``mask_patch_size``),
    ``crop_bboxes`` (the ``(y0, y1, x0, x1)`` window of every crop).

    Args:
        global_size (int | tuple[int, int]): Global crop size. Defaults to 224.
        local_size (int | tuple[int, int]): Local crop size. Defaults to 96.
        num_local (int): Number of local crops, 1 to 12. Defaults to 6.
        global_scale (tuple[float, float]): Area share of a global crop.
            Defaults to (0.4, 1.0) (REF; the paper says > 50 %).
        local_scale (tuple[float, float]): Area share of a local crop.
            Defaults to (0.05, 0.4) (REF; the paper says < 30 %).
        ratio (tuple[float, float]): Aspect ratio range (w / h). Defaults to
            (3/4, 4/3).
        augment (dict, optional): Arguments of :class:`AOIAugment` for every
            crop (``pad_to`` is always None); None: no augmentation. Defaults
            to ``dict(n=3)`` (the spec §1.5 policy).
        second_global_exclude (Sequence[str]): Ops removed for the second
            global crop. Defaults to ``('contrast', 'gamma')``.
        black_thr (float): Largest accepted share of zero buffer0 pixels, in
            [0, 1]; 1.0 disables the filter. Defaults to 0.95.
        max_tries (int): Re-draws of a black window (>= 0). Defaults to 10.
        interpolation (str): ``'bicubic'`` (REF), ``'bilinear'``, ``'area'``
            or ``'nearest'``. Defaults to ``'bicubic'``.
        mask_patch_size (int, optional): Token size in pixels of the masked
            backbone (16 for ViT-Tiny, 32 for FasterViT-0); None: no masks
            (DINO). Defaults to None.
        mask_prob (float): Probability that a global crop is masked. Defaults to 0.5.
        mask_ratio (tuple[float, float]): Range of the masked share of a
            masked view, inside (0, 1). Defaults to (0.1, 0.5).
        mask_min_block (int, optional): Smallest block in tokens; None:
            ``(min(h, w) // 3) ** 2``. Defaults to None.
    """

    def __init__(self,
                 global_size: Union[int, Tuple[int, int]] = 224,
                 local_size: Union[int, Tuple[int, int]] = 96,
                 num_local: int = 6,
                 global_scale: Tuple[float, float] = (0.4, 1.0),
                 local_scale: Tuple[float, float] = (0.05, 0.4),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                 augment: Optional[dict] = dict(n=3),
                 second_global_exclude: Sequence[str] = ('contrast', 'gamma'),
                 black_thr: float = 0.95,
                 max_tries: int = 10,
                 interpolation: str = 'bicubic',
                 mask_patch_size: Optional[int] = None,
                 mask_prob: float = 0.5,
                 mask_ratio: Tuple[float, float] = (0.1, 0.5),
                 mask_min_block: Optional[int] = None) -> None:
        self.global_size = F.to_hw(global_size, 'global_size')
        self.local_size = F.to_hw(local_size, 'local_size')
        if (not isinstance(num_local, (int, np.integer)) or isinstance(num_local, bool)
                or not 1 <= num_local <= MAX_LOCAL_CROPS):
            raise ValueError(f"AOIMultiCrop: 'num_local' must be an int from 1 to "
                             f'{MAX_LOCAL_CROPS}, got {num_local!r}')
        self.num_local = int(num_local)
        self.global_scale = self._share_range(global_scale, 'global_scale')
        self.local_scale = self._share_range(local_scale, 'local_scale')
        self.ratio = _check_range(ratio, 'ratio', low=0.0, low_inclusive=False)
        if not 0.0 <= float(black_thr) <= 1.0:
            raise ValueError(f"AOIMultiCrop: 'black_thr' must be in [0, 1], got {black_thr!r}")
        if (not isinstance(max_tries, (int, np.integer)) or isinstance(max_tries, bool)
                or max_tries < 0):
            raise ValueError(f"AOIMultiCrop: 'max_tries' must be an int >= 0, got {max_tries!r}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"AOIMultiCrop: 'interpolation' must be one of "
                             f'{sorted(_INTERPOLATIONS)}, got {interpolation!r}')
        self.black_thr = float(black_thr)
        self.max_tries = int(max_tries)
        self.interpolation = interpolation
        self._build_augment(augment, second_global_exclude)
        self._check_masking(mask_patch_size, mask_prob, mask_ratio, mask_min_block)

    # ------------------------------------------------------------ validation
    @staticmethod
    def _share_range(value: Tuple[float, float], name: str) -> Tuple[float, float]:
        lo, hi = _check_range(value, name, low=0.0, low_inclusive=False)
        if hi > 1.0:
            raise ValueError(f'AOIMultiCrop: {name!r} is a share of the image area and must '
                             f'lie in (0, 1], got {value!r}')
        return lo, hi

    def _build_augment(self, augment: Optional[dict], exclude: Sequence[str]) -> None:
        self.augment = None if augment is None else dict(augment)
        exclude = (exclude, ) if isinstance(exclude, str) else tuple(exclude)
        unknown = [t for t in exclude if t not in AOI_AUGMENT_OPS]
        if unknown:
            raise ValueError(f"AOIMultiCrop: 'second_global_exclude' has unknown op(s) "
                             f'{unknown}; valid names are {list(AOI_AUGMENT_OPS)}')
        self.second_global_exclude = exclude
        if augment is None:
            self._aug = self._aug_second = None
            return
        if 'pad_to' in augment and augment['pad_to'] is not None:
            raise ValueError("AOIMultiCrop: 'augment' must not set pad_to (crops are "
                             'augmented at their final size)')
        kwargs = {k: v for k, v in augment.items() if k not in ('type', 'pad_to')}
        self._aug = AOIAugment(pad_to=None, **kwargs)
        second = [t for t in self._aug.transforms if t not in exclude]
        if self._aug.n > 0 and not second:
            raise ValueError(f"AOIMultiCrop: 'second_global_exclude' {exclude} removes every "
                             f'op of {self._aug.transforms}')
        self._aug_second = AOIAugment(pad_to=None, **dict(kwargs, transforms=second))

    def _check_masking(self, patch: Optional[int], prob: float, ratio: Tuple[float, float],
                       min_block: Optional[int]) -> None:
        self.mask_patch_size = patch
        self.mask_prob = float(prob)
        self.mask_min_block = min_block
        if not 0.0 <= self.mask_prob <= 1.0:
            raise ValueError(f"AOIMultiCrop: 'mask_prob' must be in [0, 1], got {prob!r}")
        lo, hi = _check_range(ratio, 'mask_ratio')
        if not 0.0 < lo <= hi < 1.0:
            raise ValueError(f"AOIMultiCrop: 'mask_ratio' must lie inside (0, 1), got {ratio!r}")
        self.mask_ratio = (lo, hi)
        if min_block is not None and (not isinstance(min_block, (int, np.integer))
                                      or min_block < 1):
            raise ValueError(f"AOIMultiCrop: 'mask_min_block' must be an int >= 1, "
                             f'got {min_block!r}')
        if patch is None:
            return
        if not isinstance(patch, (int, np.integer)) or isinstance(patch, bool) or patch < 1:
            raise ValueError(f"AOIMultiCrop: 'mask_patch_size' must be an int >= 1, got {patch!r}")
        for name, size in (('global_size', self.global_size), ('local_size', self.local_size)):
            if size[0] < patch or size[1] < patch or size[0] % patch or size[1] % patch:
                raise ValueError(f'AOIMultiCrop: {name} {size} must be a positive multiple of '
                                 f'the mask grid (mask_patch_size={patch} px): a crop smaller '
                                 f'than one token, or not a whole number of tokens, cannot '
                                 f'be masked or encoded')

    # ------------------------------------------------------------------ crops
    def _crop(self, img: np.ndarray, size: Tuple[int, int],
              scale: Tuple[float, float]) -> Tuple[np.ndarray, F.Bbox]:
        hw = img.shape[:2]
        bbox, _ = F.sample_bbox_with_black_filter(
            img, lambda: sample_resized_crop_bbox(hw, scale, self.ratio), self.black_thr,
            self.max_tries)
        return resize(F.crop(img, bbox), size, self.interpolation), bbox

    @staticmethod
    def _augment(aug: Optional[AOIAugment], crop: np.ndarray) -> np.ndarray:
        return crop if aug is None else aug.transform(dict(img=crop))['img']

    def _masks(self) -> np.ndarray:
        p = self.mask_patch_size
        grid = (self.global_size[0] // p, self.global_size[1] // p)
        masks = np.zeros((2, *grid), dtype=bool)
        for v in range(2):
            if np.random.rand() < self.mask_prob:
                share = np.random.uniform(*self.mask_ratio)
                masks[v] = block_mask(grid, int(share * grid[0] * grid[1]), self.mask_min_block)
        return masks

    def transform(self, results: dict) -> dict:
        """Replace ``img`` by the list of crops (and add ``mask``), see the class doc."""
        F.check_img_and_masks(results, 'AOIMultiCrop')
        img = results['img']
        if img.dtype not in (np.uint8, np.uint16):
            raise TypeError(f"AOIMultiCrop: results['img'] must be uint8 or uint16, "
                            f'got {img.dtype}')
        crops: List[np.ndarray] = []
        bboxes: List[F.Bbox] = []
        plan = [(self.global_size, self.global_scale, self._aug),
                (self.global_size, self.global_scale, self._aug_second)]
        plan += [(self.local_size, self.local_scale, self._aug)] * self.num_local
        for size, scale, aug in plan:
            crop, bbox = self._crop(img, size, scale)
            crops.append(self._augment(aug, crop))
            bboxes.append(tuple(int(v) for v in bbox))
        results['img'] = crops
        results['img_shape'] = self.global_size
        results['crop_bboxes'] = bboxes
        if self.mask_patch_size is not None:
            results['mask'] = self._masks()
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(global_size={self.global_size}, '
                f'local_size={self.local_size}, num_local={self.num_local}, '
                f'global_scale={self.global_scale}, local_scale={self.local_scale}, '
                f'ratio={self.ratio}, augment={self.augment}, '
                f'second_global_exclude={self.second_global_exclude}, '
                f'black_thr={self.black_thr}, max_tries={self.max_tries}, '
                f'interpolation={self.interpolation!r}, mask_patch_size={self.mask_patch_size}, '
                f'mask_prob={self.mask_prob}, mask_ratio={self.mask_ratio}, '
                f'mask_min_block={self.mask_min_block})')
