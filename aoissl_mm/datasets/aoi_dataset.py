"""The labelled 2-channel multi-label AOI dataset (mmseg)."""
from typing import List, Optional

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .io import AOIDataError, find_buffer_pairs, find_label_file
from .metainfo import AOI_CLASSES, AOI_PALETTE
from .synthetic import maybe_generate_synthetic


@DATASETS.register_module()
class AOIDataset(BaseSegDataset):
    """Two-light AOI images of wire-bonded devices with overlapping class masks.

    Layout (relative to ``data_root``)::

        images/<split>/<stem>_buffer0.png, <stem>_buffer1.png   (8/16-bit PNG or TIFF)
        labels/<split>/<stem>.png   (uint8 bit mask: bit c <=> class c)  or  <stem>.npy (HxWxC)

    Each sample carries ``buffer_paths``, ``img_path`` (= buffer0),
    ``seg_map_path`` and ``num_classes``; pair it with ``LoadAOIImage``,
    ``LoadMultiLabelAnnotations`` and ``PackMultiLabelSegInputs``.

    Args:
        data_prefix (dict): ``img_path`` and ``seg_map_path`` folders, e.g.
            ``dict(img_path='images/train', seg_map_path='labels/train')``.
        synthetic (dict, optional): ``dict(data_root=..., **generator_kwargs)``.
            When ``data_root`` is that synthetic root and holds no ``images``
            folder yet, the embedded synthetic benchmark is generated there
            first (:func:`aoissl_mm.datasets.synthetic.ensure_synthetic_aoi`).
            Any other ``data_root`` (your own data, or a typo) is never
            generated into: a missing folder is an error.
        **kwargs: See :class:`mmseg.datasets.BaseSegDataset`. ``metainfo`` may
            override ``classes`` (up to 8 for bit-mask PNG labels) and
            ``palette``.
    """

    METAINFO = dict(classes=AOI_CLASSES, palette=AOI_PALETTE)

    def __init__(self,
                 data_prefix: dict = dict(img_path='images/train', seg_map_path='labels/train'),
                 synthetic: Optional[dict] = None,
                 **kwargs) -> None:
        maybe_generate_synthetic(kwargs.get('data_root'), synthetic, 'images')
        super().__init__(data_prefix=data_prefix, img_suffix='', seg_map_suffix='', **kwargs)

    def _generate_palette(self) -> list:
        # BaseSegDataset draws random colours for unknown classes; keep ours stable
        classes = self._metainfo.get('classes', AOI_CLASSES)
        palette = list(AOI_PALETTE)
        while len(palette) < len(classes):
            k = len(palette)
            palette.append([(67 * k) % 256, (151 * k) % 256, (211 * k) % 256])
        return palette[:len(classes)]

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '')
        ann_dir = self.data_prefix.get('seg_map_path')
        num_classes = len(self._metainfo['classes'])
        if num_classes > 8 and ann_dir:
            label_note = 'bit-mask PNG labels hold at most 8 classes; use .npy labels'
        else:
            label_note = None
        data_list = []
        for stem, p0, p1 in find_buffer_pairs(img_dir):
            info = dict(img_path=p0, buffer_paths=(p0, p1), stem=stem, num_classes=num_classes,
                        label_map=self.label_map, reduce_zero_label=False, seg_fields=[])
            if ann_dir:
                seg = find_label_file(ann_dir, stem)
                if label_note and seg.endswith('.png'):
                    raise AOIDataError(f'{seg}: {label_note} ({num_classes} classes)')
                info['seg_map_path'] = seg
            data_list.append(info)
        return data_list
