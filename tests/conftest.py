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
