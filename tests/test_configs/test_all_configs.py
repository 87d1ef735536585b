"""Every shipped segmentation config loads, names registered types, and agrees with its dataset.

(The self-supervised configs in configs/selfsup/ have no decode head; their own tests,
tests/test_configs/test_mae_configs.py and test_selfsup_dino_ibot.py, load them.)"""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from aoissl_mm.utils import check_dataset_classes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p and f'{osp.sep}selfsup{osp.sep}' not in p)


def test_configs_found():
    names = {osp.relpath(p, osp.join(ROOT, 'configs')) for p in CONFIGS}
    # the documented short names are kept
    assert {'fastervit0_upernet_aoi.py', 'fastervit0_upernet_aoi_cpu.py',
            'vit-tiny_upernet_aoi_cpu.py'} <= names
    assert len(names) >= 15


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_loads_and_matches_dataset(path):
    from mmseg.registry import DATASETS, MODELS
    cfg = Config.fromfile(path)
    assert MODELS.get(cfg.model.type) is not None, cfg.model.type
    assert DATASETS.get(cfg.train_dataloader.dataset.type) is not None
    classes = check_dataset_classes(cfg, fill_class_names=True)
    assert classes == ('wire', 'ball', 'wedge', 'epoxy')
    assert cfg.model.decode_head.class_names == classes
    # the CPU recipes train on 256² crops and evaluate on the 512² centre crops
    if 'budget22min' in path or path.endswith('_cpu.py'):
        crop = [t for t in cfg.train_dataloader.dataset.pipeline
                if t.type == 'PositiveAnchoredRandomCrop'][0]
        assert tuple(crop.crop_size) == (256, 256)
        assert cfg.custom_hooks[0].budget_s == 22 * 60
    val_crop = [t for t in cfg.val_dataloader.dataset.pipeline if t.type == 'PadCenterCrop'][0]
    assert tuple(val_crop.size) == (512, 512)
