"""Shared set-up of the tool tests: a tiny synthetic root and a retrieval config pointed at it."""
import os.path as osp

import pytest
from mmengine.config import Config

from aoissl_mm.datasets.synthetic import generate_synthetic_aoi

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RETRIEVAL_CFG = osp.join(ROOT, 'configs', 'retrieval', 'retrieval-patch-sim_vit-tiny_aoi-512.py')


def _tiny_retrieval_config(tmp, crop, num_train=3, num_test=2, batch_size=None, **model):
    """Generate a tiny synthetic root under ``tmp`` and dump a retrieval config using it.

    Every evaluation and memory loader reads ``tmp/data`` with ``crop``-sized pad + centre
    crops and no workers; ``model`` entries override ``cfg.model``.

    Returns:
        tuple: ``(data_root, config_path, config)``.
    """
    data_root = str(tmp / 'data')
    generate_synthetic_aoi(data_root, num_train=num_train, num_val=1, num_test=num_test,
                           num_pretrain=0, num_families=2, size_range=(100, 130), progress=False)
    cfg = Config.fromfile(RETRIEVAL_CFG)
    for loader in (cfg.val_dataloader, cfg.test_dataloader, cfg.custom_hooks[0].dataloader):
        loader.dataset.data_root = data_root
        loader.dataset.synthetic.data_root = data_root
        loader.num_workers = 0
        loader.persistent_workers = False
        if batch_size is not None:
            loader.batch_size = batch_size
        for t in loader.dataset.pipeline:
            if t['type'] == 'PadCenterCrop':
                t['size'] = (crop, crop)
    cfg.model.update(model)
    path = str(tmp / 'retrieval_tiny.py')
    cfg.dump(path)
    return data_root, path, cfg


@pytest.fixture(scope='module')
def tiny_retrieval_config():
    """The function :func:`_tiny_retrieval_config` (module-scoped fixtures call it)."""
    return _tiny_retrieval_config
