"""A tiny iteration-based training config for the checkpoint and resume tests."""
import os.path as osp
from typing import Callable, Optional, Sequence

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


@pytest.fixture
def tiny_iter_config(tmp_path, tiny_training_config) -> Callable:
    """``make(max_iters=4, num_workers=0, name='tiny.py', changes=None, drop_hooks=())``.

    The FasterViT-0 fixed-iteration recipe (``upernet_fastervit0_773it_aoi-256.py``: no time
    budget, warm-up + cosine by iteration; drop-path 0.2 and the AOI augmentations active) on
    3 synthetic training images, 64-pixel crops, batch 2, a loss logged every iteration,
    validation and a checkpoint every 2 iterations (one kept). ``changes`` (dotted keys) are
    set with ``Config.merge_from_dict``; ``drop_hooks`` names ``default_hooks`` to remove.
    Returns the dumped config's path.
    """

    def make(max_iters: int = 4, num_workers: int = 0, name: str = 'tiny.py',
             changes: Optional[dict] = None, drop_hooks: Sequence[str] = ()) -> str:
        cfg = tiny_training_config('upernet/upernet_fastervit0_773it_aoi-256.py',
                                   num_workers=num_workers)
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
