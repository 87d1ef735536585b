"""Evaluation-time zero-pad then centre-crop (spec §1.4)."""
from typing import Tuple, Union

from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
from mmseg.registry import TRANSFORMS

from . import functional as F


@TRANSFORMS.register_module()
@PRETRAIN_TRANSFORMS.register_module()
class PadCenterCrop(BaseTransform):
    """Pad to at least ``size`` (centred), then centre-crop to exactly ``size``.

    Padding splits the extra rows/columns evenly, an odd one going to the
    bottom/right; the crop starts at ``((H - h) // 2, (W - w) // 2)``. Masks in
    ``seg_fields`` get the same padding (``seg_pad_val``) and crop.

    Required keys: ``img``. Optional: ``seg_fields``.
    Modified keys: ``img``, ``img_shape``, ``ori_shape``, every key in
    ``seg_fields``. The crop becomes the evaluated image: ``ori_shape`` is set
    to the crop size so that predictions are compared with the cropped masks
    (``crop_bbox`` records where the crop lies).
    Added keys: ``crop_bbox`` = ``(y0, y1, x0, x1)`` in the padded image.

    Args:
        size (int | tuple[int, int]): Output ``(h, w)``. Defaults to (512, 512).
        pad_val (int): Image padding value. Defaults to 0.
        seg_pad_val (int): Mask padding value. Defaults to 0.
    """

    def __init__(self,
                 size: Union[int, Tuple[int, int]] = (512, 512),
                 pad_val: int = 0,
                 seg_pad_val: int = 0) -> None:
        self.size = F.to_hw(size, 'size')
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    def transform(self, results: dict) -> dict:
        """Pad and centre-crop ``img`` and every mask to ``size``."""
        keys = F.check_img_and_masks(results, 'PadCenterCrop')
        img, _ = F.pad_center(results['img'], self.size, self.pad_val)
        h, w = img.shape[:2]
        th, tw = self.size
        y0, x0 = (h - th) // 2, (w - tw) // 2
        bbox = (y0, y0 + th, x0, x0 + tw)
        results['img'] = F.crop(img, bbox)
        for key in keys:
            mask, _ = F.pad_center(results[key], self.size, self.seg_pad_val)
            results[key] = F.crop(mask, bbox)
        results['img_shape'] = results['img'].shape[:2]
        results['ori_shape'] = results['img'].shape[:2]
        results['crop_bbox'] = bbox
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, pad_val={self.pad_val}, '
                f'seg_pad_val={self.seg_pad_val})')
