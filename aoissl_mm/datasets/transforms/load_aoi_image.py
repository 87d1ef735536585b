"""Load the two light buffers of an AOI image as one H x W x 2 array."""
import os.path as osp
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
from mmseg.registry import TRANSFORMS

from ..io import read_buffer_pair, split_buffer_stem


@TRANSFORMS.register_module()
@PRETRAIN_TRANSFORMS.register_module()
class LoadAOIImage(BaseTransform):
    """Read ``<stem>_buffer0`` and ``<stem>_buffer1`` into ``results['img']``.

    Required keys: ``buffer_paths`` (a pair of paths) or ``img_path`` (the
    ``buffer0`` file; ``buffer1`` is found by name).

    Added keys: ``img`` (H x W x 2, uint8 or uint16 unchanged, or float32 when
    ``to_float32``), ``img_shape``, ``ori_shape``, and ``stem`` (the name
    shared by the pair, which names predictions and drawings downstream)
    when the dataset has not set it.

    A 3-channel buffer keeps its first channel (with a warning); 16-bit data
    keeps its full range (set the preprocessor statistics in the same units,
    ``tools/aoi_stats.py`` computes them).

    Args:
        to_float32 (bool): Cast the image to float32. Defaults to False.
    """

    def __init__(self, to_float32: bool = False) -> None:
        self.to_float32 = to_float32

    @staticmethod
    def _partner(path0: str) -> Optional[str]:
        parsed = split_buffer_stem(path0)
        if parsed is None:
            return None
        folder, name = osp.split(path0)
        stem, ext = osp.splitext(name)
        return osp.join(folder, stem[:-1] + '1' + ext)

    @staticmethod
    def _stem(path0: str) -> str:
        parsed = split_buffer_stem(path0)
        return parsed[0] if parsed is not None else osp.splitext(osp.basename(path0))[0]

    def transform(self, results: dict) -> dict:
        if 'buffer_paths' in results:
            p0, p1 = results['buffer_paths']
        else:
            p0 = results['img_path']
            p1 = self._partner(p0)
            if p1 is None:
                raise ValueError(f"{p0}: 'img_path' must name a <stem>_buffer0 file "
                                 f"(or give 'buffer_paths')")
        img = read_buffer_pair(p0, p1)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results.setdefault('stem', self._stem(p0))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(to_float32={self.to_float32})'
