"""Distributed setup: the backend follows the device; --cfg-options takes the Runner's keys."""
import re

import mmengine.runner.runner as mm_runner
import pytest
import torch
from mmengine.config import Config

from aoissl_mm.utils.runner_setup import (
    RUNNER_TOP_LEVEL_KEYS,
    check_config_keys,
    resolve_dist_backend,
)


def _cfg(launcher='pytorch', backend='nccl'):
    return Config(dict(launcher=launcher, env_cfg=dict(dist_cfg=dict(backend=backend)),
                       model=dict(type='EncoderDecoder'), find_unused_parameters=True))


@pytest.mark.parametrize('cuda, launcher, backend, expected', [
    (False, 'pytorch', 'nccl', 'gloo'),   # NCCL needs CUDA
    (False, 'slurm', 'nccl', 'gloo'),
    (True, 'pytorch', 'nccl', 'nccl'),    # CUDA: untouched
    (False, 'pytorch', 'mpi', 'mpi'),     # a backend the user chose: untouched
    (True, 'mpi', 'gloo', 'gloo'),
])
def test_backend_follows_the_device(monkeypatch, cuda, launcher, backend, expected):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    cfg = _cfg(launcher, backend)
    assert resolve_dist_backend(cfg) == expected
    assert cfg.env_cfg.dist_cfg.backend == expected


def test_not_distributed_is_left_alone(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = _cfg('none')
    assert resolve_dist_backend(cfg) is None and cfg.env_cfg.dist_cfg.backend == 'nccl'
    cfg = Config(dict(launcher='pytorch'))  # no env_cfg at all: mmengine's default is nccl
    assert resolve_dist_backend(cfg) == 'gloo'


def test_runner_top_level_keys_are_accepted():
    cfg = _cfg()
    check_config_keys(cfg, ['find_unused_parameters', 'model_wrapper_cfg', 'sync_bn',
                            'compile', 'auto_scale_lr', 'activation_checkpointing',
                            'efficient_conv_bn_eval', 'experiment_name',
                            # nothing to check below a top-level key the config lacks
                            'model_wrapper_cfg.type', 'auto_scale_lr.base_batch_size',
                            'env_cfg.cudnn_benchmark', 'env_cfg.dist_cfg.timeout'])


@pytest.mark.parametrize('key, match', [
    ('find_unused_parameter', "'find_unused_parameter' is not a key of the config"),
    ('model_wraper_cfg.type', "'model_wraper_cfg' is not a key"),
    ('sync_bn_mode', "'sync_bn_mode' is not a key"),
    ('env_cfg.dist_config.backend', "'dist_config' is not a key of env_cfg"),
])
def test_other_new_top_level_keys_are_refused(key, match):
    with pytest.raises(KeyError, match=match):
        check_config_keys(_cfg(), [key])


def test_every_key_the_runner_reads_is_listed():
    # independent reference: mmengine's own source, every cfg.get('<key>') on the config
    # itself (from_cfg's cfg, the runner's self.cfg; not env_cfg.get, dataloader_cfg.get...)
    source = open(mm_runner.__file__).read()
    read = set(re.findall(r"(?<![\w.])(?:self\.)?cfg\.get\(\s*'(\w+)'", source))
    read |= set(re.findall(r"(?<![\w.])cfg\['(\w+)'\]", source))
    assert {'model_wrapper_cfg', 'find_unused_parameters', 'sync_bn', 'compile'} <= read
    assert read <= RUNNER_TOP_LEVEL_KEYS, sorted(read - RUNNER_TOP_LEVEL_KEYS)
