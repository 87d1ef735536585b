"""Unlabelled 2-channel AOI images for self-supervised pretraining (mmpretrain)."""
from typing import List, Optional

from mmengine.dataset import BaseDataset
from mmpretrain.registry import DATASETS

from .io import find_buffer_pairs
from .synthetic import maybe_generate_synthetic


@DATASETS.register_module()
class AOIPretrainDataset(BaseDataset):
    """All ``<stem>_buffer0/1`` pairs below ``data_root/data_prefix`` (any depth).

    Args:
        data_root (str): Dataset root.
        data_prefix (str | dict): Sub-folder holding the images, default
            ``'pretrain'``; ``dict(img_path=...)`` is accepted too.
        synthetic (dict, optional): ``dict(data_root=..., **generator_kwargs)``:
            generate the synthetic benchmark first when ``data_root`` is that
            root and its ``data_prefix`` folder is missing (see AOIDataset).
        **kwargs: See :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO = dict(classes=None)

    def __init__(self,
                 data_root: str = '',
                 data_prefix='pretrain',
                 synthetic: Optional[dict] = None,
                 **kwargs) -> None:
        if isinstance(data_prefix, str):
            data_prefix = dict(img_path=data_prefix)
        maybe_generate_synthetic(data_root, synthetic, data_prefix.get('img_path', ''))
        super().__init__(data_root=data_root, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        return [dict(img_path=p0, buffer_paths=(p0, p1), stem=stem)
                for stem, p0, p1 in find_buffer_pairs(self.data_prefix['img_path'], recursive=True)]
