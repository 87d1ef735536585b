"""Load a multi-label (overlapping classes) mask as H x W x C."""
from typing import Optional

from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..io import read_multilabel_mask


@TRANSFORMS.register_module()
class LoadMultiLabelAnnotations(BaseTransform):
    """Read a bit-mask PNG or an H x W x C ``.npy`` into ``results['gt_seg_map']``.

    Unlike mmseg's ``LoadAnnotations`` (one class id per pixel), every class
    has its own 0/1 channel, so a wire crossing a ball keeps both labels.

    Required keys: ``seg_map_path``; ``num_classes`` unless given here.
    Added keys: ``gt_seg_map`` (H x W x C uint8) and ``'gt_seg_map'`` appended
    to ``seg_fields`` so that geometric transforms move the mask with the image.

    Args:
        num_classes (int, optional): Number of classes C. Defaults to the
            dataset's (``results['num_classes']``).
    """

    def __init__(self, num_classes: Optional[int] = None) -> None:
        self.num_classes = num_classes

    def transform(self, results: dict) -> dict:
        num_classes = self.num_classes or results.get('num_classes')
        if not num_classes:
            raise KeyError("LoadMultiLabelAnnotations needs 'num_classes' (argument or "
                           "dataset metainfo)")
        expected = results['img'].shape[:2] if 'img' in results else None
        mask = read_multilabel_mask(results['seg_map_path'], num_classes, expected)
        results['gt_seg_map'] = mask
        fields = results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in fields:
            fields.append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(num_classes={self.num_classes})'
