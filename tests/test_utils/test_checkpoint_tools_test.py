"""tools/test.py reads its checkpoint once, from an http:// URL (fixture ``http_server``)."""
import glob
import os.path as osp
import runpy
import sys

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from aoissl_mm.datasets.io import read_multilabel_mask
from aoissl_mm.datasets.synthetic import generate_synthetic_aoi

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CROP = 64


def test_tools_test_reads_a_url_checkpoint_once(tmp_path, monkeypatch, http_server):
    data_root = str(tmp_path / 'data')
    generate_synthetic_aoi(data_root, num_train=1, num_val=1, num_test=2, num_pretrain=0,
                           num_families=1, size_range=(96, 128), progress=False)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'vit-tiny_upernet_aoi_cpu.py'))
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = data_root
        loader.num_workers = 0
        loader.persistent_workers = False
    for t in cfg.test_dataloader.dataset.pipeline:
        if t['type'] == 'PadCenterCrop':
            t['size'] = (CROP, CROP)
    cfg.custom_hooks = []
    cfg_path = str(tmp_path / 'tiny.py')
    cfg.dump(cfg_path)

    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    www, base, requests = http_server
    torch.save({'meta': {'iter': 1}, 'state_dict': model.state_dict()}, str(www / 'seg.pth'))

    reads = []
    real_load = torch.load
    monkeypatch.setattr(torch, 'load', lambda *a, **k: reads.append(a[0]) or real_load(*a, **k))
    out = str(tmp_path / 'out')
    monkeypatch.setattr(sys, 'argv', ['test.py', cfg_path, f'{base}/seg.pth', '--work-dir',
                                      str(tmp_path / 'work'), '--out', out])
    runpy.run_path(osp.join(ROOT, 'tools', 'test.py'), run_name='__main__')
    assert requests == [('/seg.pth', 200)]
    cached = osp.join(str(tmp_path / 'torch_home'), 'hub', 'checkpoints', 'seg.pth')
    assert reads == [cached]  # one read: the strict check and the Runner's load share it
    preds = sorted(glob.glob(osp.join(out, '*.png')))
    assert len(preds) == 2 and read_multilabel_mask(preds[0], 4).shape == (CROP, CROP, 4)
