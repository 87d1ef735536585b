"""Random crop anchored on a positive mask pixel, with the black-patch filter."""
from typing import Optional, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
from mmseg.registry import TRANSFORMS

from . import functional as F


@TRANSFORMS.register_module()
@PRETRAIN_TRANSFORMS.register_module()
class PositiveAnchoredRandomCrop(BaseTransform):
    """Crop ``crop_size``, usually around a random positive mask pixel (spec §1.5, §1.7).

    With probability ``pos_prob`` (and when ``gt_seg_map`` has a positive
    pixel in any class), a pixel of the union of all classes is chosen
    uniformly, placed at a uniform position inside the crop window, and the
    window is clipped to the image, so the crop always contains that pixel.
    Otherwise the window is uniform over the image. Without ``gt_seg_map``
    (pre-training) every crop is uniform. With ``class_balanced=True`` the
    anchor is drawn in two steps instead: a class uniformly among the classes
    present in the mask, then a pixel of that class (the union rule of the
    reference samples a rare class, e.g. a small wedge, in proportion to its
    tiny area only).

    An image smaller than the crop is first padded (centred) with
    ``pad_val`` / ``seg_pad_val``. Black-patch filter: when more than
    ``black_thr`` of the crop's pixels are 0 in channel 0 (buffer0), the window
    is re-drawn (same mode, positive or uniform), at most ``max_tries`` times;
    then the last window is accepted.

    ``img`` and every mask in ``seg_fields`` are cropped identically (plain
    slicing, so 2-channel images and H x W x C masks are untouched otherwise).

    Required keys: ``img``. Optional: ``gt_seg_map`` (H x W x C), ``seg_fields``.
    Modified keys: ``img``, ``img_shape``, every key in ``seg_fields``.
    Added keys: ``crop_bbox`` = ``(y0, y1, x0, x1)`` in the (padded) image.

    Args:
        crop_size (int | tuple[int, int]): Output ``(h, w)``. Defaults to (512, 512).
        pos_prob (float): Probability of a positive-anchored crop, in [0, 1].
            Defaults to 0.8.
        black_thr (float): Maximum fraction of zero buffer0 pixels in an
            accepted crop, in [0, 1]; 1.0 disables the filter. Defaults to 0.95.
        max_tries (int): Maximum number of re-draws of a black crop (>= 0).
            Defaults to 10.
        pad_val (int): Image padding value. Defaults to 0.
        seg_pad_val (int): Mask padding value. Defaults to 0.
        class_balanced (bool): Anchor on a uniformly chosen present class
            first. Defaults to False (the reference's union rule).
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]] = (512, 512),
                 pos_prob: float = 0.8,
                 black_thr: float = 0.95,
                 max_tries: int = 10,
                 pad_val: int = 0,
                 seg_pad_val: int = 0,
                 class_balanced: bool = False) -> None:
        self.crop_size = F.to_hw(crop_size, 'crop_size')
        if not 0.0 <= float(pos_prob) <= 1.0:
            raise ValueError(f"'pos_prob' must be in [0, 1], got {pos_prob!r}")
        if not 0.0 <= float(black_thr) <= 1.0:
            raise ValueError(f"'black_thr' must be in [0, 1], got {black_thr!r}")
        if not isinstance(max_tries, (int, np.integer)) or isinstance(max_tries, bool) \
                or max_tries < 0:
            raise ValueError(f"'max_tries' must be an int >= 0, got {max_tries!r}")
        self.pos_prob = float(pos_prob)
        self.black_thr = float(black_thr)
        self.max_tries = int(max_tries)
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val
        self.class_balanced = bool(class_balanced)

    def _sample_bbox(self, img_hw: Tuple[int, int],
                     positives: Optional[np.ndarray]) -> F.Bbox:
        """Draw one window ``(y0, y1, x0, x1)``.

        Args:
            img_hw (tuple[int, int]): Size of the (padded) image.
            positives (np.ndarray, optional): N x 2 ``(y, x)`` coordinates of
                positive pixels for an anchored draw; None for a uniform draw.

        Returns:
            tuple: ``(y0, y1, x0, x1)``.
        """
        (h, w), (ch, cw) = img_hw, self.crop_size
        if positives is None:
            y0 = F.random_window_start(h, ch)
            x0 = F.random_window_start(w, cw)
        else:
            py, px = positives[int(np.random.randint(0, len(positives)))]
            y0 = F.anchored_window_start(int(py), h, ch)
            x0 = F.anchored_window_start(int(px), w, cw)
        return y0, y0 + ch, x0, x0 + cw

    def transform(self, results: dict) -> dict:
        """Pad if needed, choose a window and crop ``img`` and all masks."""
        keys = F.check_img_and_masks(results, 'PositiveAnchoredRandomCrop')
        results['img'], _ = F.pad_center(results['img'], self.crop_size, self.pad_val)
        for key in keys:
            results[key], _ = F.pad_center(results[key], self.crop_size, self.seg_pad_val)
        img = results['img']

        positives = None
        if 'gt_seg_map' in results and np.random.rand() < self.pos_prob:
            gt = results['gt_seg_map']
            gt = gt[:, :, None] if gt.ndim == 2 else gt
            if self.class_balanced:
                present = np.flatnonzero((gt != 0).any(axis=(0, 1)))
                if len(present):
                    cls = present[int(np.random.randint(0, len(present)))]
                    positives = np.argwhere(gt[:, :, cls] != 0)
            else:
                coords = np.argwhere((gt != 0).any(axis=2))
                if len(coords):
                    positives = coords

        bbox, _ = F.sample_bbox_with_black_filter(
            img, lambda: self._sample_bbox(img.shape[:2], positives), self.black_thr,
            self.max_tries)
        results['img'] = F.crop(img, bbox)
        for key in keys:
            results[key] = F.crop(results[key], bbox)
        results['img_shape'] = results['img'].shape[:2]
        results['crop_bbox'] = tuple(int(v) for v in bbox)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'pos_prob={self.pos_prob}, black_thr={self.black_thr}, '
                f'max_tries={self.max_tries}, pad_val={self.pad_val}, '
                f'seg_pad_val={self.seg_pad_val}, class_balanced={self.class_balanced})')
