"""Pack a 2-channel image and a multi-label mask into mmseg's data format."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample


@TRANSFORMS.register_module()
class PackMultiLabelSegInputs(BaseTransform):
    """Pack ``img`` (H x W x C_in) and ``gt_seg_map`` (H x W x C) for mmseg.

    mmseg's ``PackSegInputs`` keeps a 3-D mask as H x W x C (it expects one
    class id per pixel); this packer transposes it to (C, H, W) so that
    ``gt_sem_seg.data[c]`` is the binary mask of class ``c``.

    Output: ``inputs`` (C_in, H, W) tensor (dtype kept; the data
    preprocessor casts) and ``data_samples`` (``SegDataSample`` with
    ``gt_sem_seg`` of shape (C, H, W), uint8 {0, 1}).

    Args:
        meta_keys (Sequence[str]): Keys copied into the sample's metainfo.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'seg_map_path', 'ori_shape',
                                             'img_shape', 'pad_shape', 'scale_factor', 'flip',
                                             'flip_direction', 'reduce_zero_label',
                                             'buffer_paths', 'stem', 'crop_bbox')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        packed = {}
        img = results['img']
        if img.ndim == 2:
            img = img[:, :, None]
        packed['inputs'] = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = SegDataSample()
        if 'gt_seg_map' in results:
            mask = results['gt_seg_map']
            if mask.ndim != 3:
                raise ValueError(f"'gt_seg_map' must be H x W x C (multi-label), got shape "
                                 f"{mask.shape} for {results.get('seg_map_path')}")
            data = torch.from_numpy(np.ascontiguousarray(mask.transpose(2, 0, 1)))
            sample.gt_sem_seg = PixelData(data=data)
        sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        packed['data_samples'] = sample
        return packed

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
