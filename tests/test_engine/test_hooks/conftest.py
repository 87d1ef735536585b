"""A tiny iteration-based training config for the checkpoint and resume tests."""
import os.path as osp
from typing import Callable, Optional, Sequence

import pytest
from mmengine.config import Config

from aoissl_mm.datasets.synthetic import generate_synthetic_aoi

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CROP = 64


@pytest.fixture
def tiny_iter_config(tmp_path) -> Callable:
    """``make(max_iters=4, num_workers=0, name='tiny.py', changes=None, drop_hooks=())``.

    The FasterViT-0 fixed-iteration recipe (``upernet_fastervit0_773it_aoi-256.py``: no time
    budget, warm-up + cosine by iteration; drop-path 0.2 and the AOI augmentations active) on
    3 synthetic training images, 64-pixel crops, batch 2, a loss logged every iteration,
    validation and a checkpoint every 2 iterations (one kept). ``changes`` (dotted keys) are
    set with ``Config.merge_from_dict``; ``drop_hooks`` names ``default_hooks`` to remove.
    Returns the dumped config's path.
    """
    data_root = str(tmp_path / 'data')

    def make(max_iters: int = 4, num_workers: int = 0, name: str = 'tiny.py',
             changes: Optional[dict] = None, drop_hooks: Sequence[str] = ()) -> str:
        if not osp.isdir(data_root):
            generate_synthetic_aoi(data_root, num_train=3, num_val=2, num_test=2,
                                   num_pretrain=0, num_families=2, size_range=(160, 200),
                                   progress=False)
        cfg = Config.fromfile(
            osp.join(ROOT, 'configs', 'upernet', 'upernet_fastervit0_773it_aoi-256.py'))
        for split in ('train', 'val', 'test'):
            loader = cfg[f'{split}_dataloader']
            loader.dataset.data_root = data_root
            loader.num_workers = num_workers if split == 'train' else 0
            loader.persistent_workers = False
            for t in loader.dataset.pipeline:
                if t['type'] == 'PositiveAnchoredRandomCrop':
                    t['crop_size'] = (CROP, CROP)
                elif t['type'] == 'AOIAugment':
                    t['pad_to'] = CROP
                elif t['type'] == 'PadCenterCrop':
                    t['size'] = (CROP, CROP)
        cfg.train_dataloader.batch_size = 2
        assert cfg.custom_hooks == [] and cfg.model.backbone.drop_path_rate > 0
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2)
        cfg.param_scheduler = [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=1),
            dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=1, end=4)]
        cfg.default_hooks.logger.interval = 1
        cfg.default_hooks.checkpoint.interval = 2
        cfg.default_hooks.checkpoint.max_keep_ckpts = 1
        cfg.merge_from_dict(changes or {})
        for hook in drop_hooks:
            cfg.default_hooks.pop(hook)
        path = str(tmp_path / name)
        cfg.dump(path)
        return path

    return make
