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
    retrieval = cfg.model.type == 'RetrievalSegmentor'
    if retrieval:  # evaluation only: the memory dataloader takes the training images
        assert cfg.train_dataloader is None and cfg.train_cfg is None
        (hook, ) = [h for h in cfg.custom_hooks if h.type == 'RetrievalMemoryHook']
        train_dataset = hook.dataloader.dataset
        assert train_dataset.data_prefix.img_path == 'images/train'
    else:
        train_dataset = cfg.train_dataloader.dataset
    assert DATASETS.get(train_dataset.type) is not None
    classes = check_dataset_classes(cfg, fill_class_names=True)
    assert classes == ('wire', 'ball', 'wedge', 'epoxy')
    owner = cfg.model if retrieval else cfg.model.decode_head
    assert owner.class_names == classes
    # the CPU recipes train on 256² crops and evaluate on the 512² centre crops
    if 'budget22min' in path or path.endswith('_cpu.py'):
        crop = [t for t in cfg.train_dataloader.dataset.pipeline
                if t.type == 'PositiveAnchoredRandomCrop'][0]
        assert tuple(crop.crop_size) == (256, 256)
        assert cfg.custom_hooks[0].budget_s == 22 * 60
    val_crop = [t for t in cfg.val_dataloader.dataset.pipeline if t.type == 'PadCenterCrop'][0]
    memory_crop = [t for t in train_dataset.pipeline if t.type == 'PadCenterCrop']
    expected = (532, 532) if 'dinov2' in path else (512, 512)  # 38 x 14-px patches
    assert tuple(val_crop.size) == expected
    if retrieval:  # spec §8.1: memory images pad + centre-cropped like the evaluation ones
        assert tuple(memory_crop[0].size) == expected
