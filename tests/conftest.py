"""Shared fixtures: registries are resolved under a default scope, as in a Runner."""
import os

import pytest
from mmengine.registry import DefaultScope

os.environ.setdefault('OMP_NUM_THREADS', '2')

import aoissl_mm  # noqa: E402,F401  (registers everything, applies the compat shims)


@pytest.fixture
def seg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


@pytest.fixture
def pretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def _random_segmentor_checkpoint(tmp, config: str, seed: int = 0):
    """A segmentor built from ``config`` with random weights (a spread-out classifier, so that
    probabilities cross the thresholds), saved as a checkpoint under ``tmp``.

    Returns:
        tuple: ``(model, checkpoint_path)``.
    """
    import torch
    from mmengine.config import Config
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(seed)
        model = MODELS.build(Config.fromfile(config).model)
    torch.nn.init.normal_(model.decode_head.conv_seg.weight, std=0.05)  # spread probabilities
    path = str(tmp / 'random_weights.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=0)), path)
    return model, path


@pytest.fixture(scope='session')
def random_segmentor_checkpoint():
    """The function :func:`_random_segmentor_checkpoint` (module fixtures call it)."""
    return _random_segmentor_checkpoint



class ImageWriter:
    """Writes test images with PIL (not the package's own writer): ``image(path, arr)`` one
    file, ``pair(folder, stem, arr)`` the ``<stem>_buffer0/1.png`` pair of an H x W x 2 array."""

    @staticmethod
    def image(path, arr) -> None:
        import numpy as np
        from PIL import Image
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(arr)).save(str(path))

    def pair(self, folder, stem: str, arr) -> None:
        for i in range(2):
            self.image(folder / f'{stem}_buffer{i}.png', arr[..., i])


@pytest.fixture(scope='session')
def image_writer():
    """An :class:`ImageWriter`."""
    return ImageWriter()


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny_training_config(tmp, base: str, crop: int = 64, batch_size: int = 2,
                          num_train: int = 3, num_val: int = 2, num_test: int = 2,
                          num_workers: int = 0):
    """A training config from ``configs/<base>`` shrunk to a tiny synthetic root.

    Generates (once) ``tmp/data`` with ``num_train``/``num_val``/``num_test`` images of
    160-200 px, points every dataloader at it with ``crop``-sized random crops, AOI padding and
    evaluation centre crops, ``batch_size`` for training, ``num_workers`` for the training
    loader (0 for the others). Model, optimiser, schedule and hooks stay as the config has
    them: the caller changes what its test is about.

    Returns:
        mmengine.config.Config: The loaded, shrunk config (not yet dumped).
    """
    from mmengine.config import Config

    from aoissl_mm.datasets.synthetic import generate_synthetic_aoi
    data_root = str(tmp / 'data')
    if not os.path.isdir(data_root):
        generate_synthetic_aoi(data_root, num_train=num_train, num_val=num_val,
                               num_test=num_test, num_pretrain=0, num_families=2,
                               size_range=(160, 200), progress=False)
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', base))
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = data_root
        loader.num_workers = num_workers if split == 'train' else 0
        loader.persistent_workers = False
        for t in loader.dataset.pipeline:
            if t['type'] == 'PositiveAnchoredRandomCrop':
                t['crop_size'] = (crop, crop)
            elif t['type'] == 'AOIAugment':
                t['pad_to'] = crop
            elif t['type'] == 'PadCenterCrop':
                t['size'] = (crop, crop)
    cfg.train_dataloader.batch_size = batch_size
    return cfg


@pytest.fixture
def tiny_training_config(tmp_path):
    """``make(base, **kwargs)``: :func:`_tiny_training_config` under this test's ``tmp_path``."""
    return lambda base, **kwargs: _tiny_training_config(tmp_path, base, **kwargs)
