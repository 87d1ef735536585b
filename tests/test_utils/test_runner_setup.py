"""Library functions behind tools/: config flags, key checking, image statistics."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from aoissl_mm.utils import (
    check_config_keys,
    compute_image_stats,
    load_config,
    setup_test_cfg,
    setup_train_cfg,
    write_json,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FV_CFG = osp.join(ROOT, 'configs', 'fastervit0_upernet_aoi.py')


def test_cfg_options_keys_are_checked():
    cfg = load_config(FV_CFG)
    # existing keys and constructor arguments that are not spelled out in the config
    check_config_keys(cfg, ['model.decode_head.num_classes', 'train_dataloader.batch_size',
                            'model.backbone.window_size', 'optim_wrapper.paramwise_cfg.foo'])
    with pytest.raises(KeyError, match=r"'num_clases' is not a key of model.decode_head|"
                                       r"has no argument 'num_clases'"):
        check_config_keys(cfg, ['model.decode_head.num_clases'])
    with pytest.raises(KeyError, match="'modle' is not a key of the config"):
        check_config_keys(cfg, ['modle.backbone.arch'])
    with pytest.raises(KeyError, match='FasterViT has no argument .depthz.'):
        check_config_keys(cfg, ['model.backbone.depthz'])
    with pytest.raises(KeyError, match='not a valid index'):
        check_config_keys(cfg, ['train_dataloader.dataset.pipeline.9.type'])
    with pytest.raises(KeyError, match="'typo' is not a key of the config"):
        load_config(FV_CFG, {'typo': 1})


def test_train_and_test_flags(tmp_path):
    cfg = setup_train_cfg(load_config(FV_CFG), FV_CFG)
    assert cfg.work_dir == osp.join('./work_dirs', 'fastervit0_upernet_aoi')
    assert 'aoissl_mm' in cfg.custom_imports['imports']
    cfg = setup_train_cfg(load_config(FV_CFG), FV_CFG, work_dir='w', resume='auto', amp=True)
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        setup_train_cfg(load_config(FV_CFG), FV_CFG, resume='nope.pth')
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'x')
    cfg = setup_test_cfg(load_config(FV_CFG), FV_CFG, str(ckpt), show_dir='vis', out='preds')
    assert cfg.default_hooks.visualization.draw is True
    assert cfg.default_hooks.visualization.type == 'MultiLabelVisualizationHook'
    assert cfg.visualizer.save_dir == 'vis'
    assert cfg.test_evaluator.output_dir == 'preds' and cfg.test_evaluator.keep_results
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        setup_test_cfg(load_config(FV_CFG), FV_CFG, str(tmp_path / 'missing.pth'))


def test_image_stats_hand_computed(tmp_path):
    # image a: buffer0 all 10, buffer1 all 0;  image b: buffer0 all 30, buffer1 all 40
    for stem, v0, v1 in (('a', 10, 0), ('b', 30, 40)):
        cv2.imwrite(str(tmp_path / f'{stem}_buffer0.png'), np.full((2, 3), v0, np.uint8))
        cv2.imwrite(str(tmp_path / f'{stem}_buffer1.png'), np.full((2, 3), v1, np.uint8))
    s = compute_image_stats(str(tmp_path), progress=False)
    # 12 pixels per buffer: mean0 = 20, std0 = 10; mean1 = 20, std1 = 20
    assert s['mean'] == [20.0, 20.0] and s['std'] == [10.0, 20.0] and s['pixels'] == 12
    s = compute_image_stats(str(tmp_path), ignore_zero=True, progress=False)
    assert s['pixels'] == 12  # buffer0 is never 0, so no pixel is black in both
    out = str(tmp_path / 'o' / 's.json')
    write_json(out, s)
    assert json.load(open(out))['std'] == [10.0, 20.0]


def test_head_classes_must_match_dataset():
    from aoissl_mm.utils import check_dataset_classes
    cfg = load_config(FV_CFG)
    check_dataset_classes(cfg)  # 4 == 4 (AOIDataset.METAINFO)
    cfg.model.decode_head.num_classes = 3
    with pytest.raises(ValueError, match=r'model.decode_head.num_classes = 3 but '
                                         r'train_dataloader.dataset has 4 classes'):
        check_dataset_classes(cfg)
    cfg.train_dataloader.dataset.metainfo = dict(classes=('wire', 'ball', 'wedge'))
    with pytest.raises(ValueError, match='val_dataloader.dataset has 4 classes'):
        check_dataset_classes(cfg)
    # class names: same names in the same order as the dataset's
    cfg = load_config(FV_CFG)
    cfg.model.decode_head.class_names = ['wire', 'ball', 'wedge', 'epoxy']
    check_dataset_classes(cfg)
    cfg.model.decode_head.class_names = ['ball', 'wire', 'wedge', 'epoxy']
    with pytest.raises(ValueError, match=r"class_names \('ball', 'wire'.*differ from the "
                                         r'classes of train_dataloader'):
        check_dataset_classes(cfg)


def test_learning_curves_plot(tmp_path):
    from aoissl_mm.utils.learning_curves import plot_learning_curves, read_scalars
    d = tmp_path / '20260101_000000' / 'vis_data'
    d.mkdir(parents=True)
    recs = [dict(loss=1.0 / k, lr=1e-3, step=k) for k in range(1, 5)]
    recs.append({'mIoU': 40.0, 'IoU.wire': 30.0, 'IoU.ball': 50.0, 'step': 4})
    (d / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in recs) + '\n')
    data = read_scalars(str(d / 'scalars.json'))
    assert len(data['train']) == 4 and len(data['val']) == 1
    png = plot_learning_curves(str(tmp_path))
    img = cv2.imread(png)
    assert img is not None and img.shape[1] > img.shape[0]
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        plot_learning_curves(str(tmp_path / 'nothing'))


def test_paper_protocol_on_cpu_names_the_cpu_recipe(monkeypatch):
    import glob

    from aoissl_mm.utils.runner_setup import warn_if_cpu_only
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = load_config(osp.join(root, 'configs', 'fastervit0_upernet_aoi.py'))
    message = warn_if_cpu_only(cfg)
    assert 'python tools/train.py configs/fastervit0_upernet_aoi_cpu.py' in message
    assert warn_if_cpu_only(load_config(osp.join(root, 'configs',
                                                 'fastervit0_upernet_aoi_cpu.py'))) is None
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert warn_if_cpu_only(cfg) is None
    # every named CPU recipe exists and is itself not a GPU-sized config
    named = 0
    for path in glob.glob(osp.join(root, 'configs', '**', '*.py'), recursive=True):
        if '_base_' in path:
            continue
        recipe = Config.fromfile(path).get('cpu_recipe')
        if recipe:
            named += 1
            assert osp.isfile(osp.join(root, recipe)), (path, recipe)
            assert Config.fromfile(osp.join(root, recipe)).get('cpu_recipe') is None
    assert named >= 9
