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
