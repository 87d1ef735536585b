"""compat shim 4: mmengine's launchers and DDP wrapper on machines without CUDA."""
import os
import subprocess
import sys

import mmengine.dist.utils as mm_dist_utils
import pytest
import torch

import aoissl_mm  # noqa: F401  (applies the shims)
from aoissl_mm import compat


@pytest.mark.parametrize('name', ['_init_dist_pytorch', '_init_dist_slurm', '_init_dist_mpi'])
def test_starters_are_wrapped(name):
    assert getattr(getattr(mm_dist_utils, name), '__aoissl_cpu_safe__', False)


@pytest.mark.parametrize('cuda', [False, True])
def test_set_device_skipped_only_without_cuda(monkeypatch, cuda):
    calls = []
    recorder = calls.append
    monkeypatch.setattr(torch.cuda, 'set_device', recorder)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)

    def start(backend, **kwargs):  # what mmengine's starters do first
        torch.cuda.set_device(3)
        return backend, kwargs

    assert compat._cpu_safe_starter(start)('gloo', timeout=5) == ('gloo', {'timeout': 5})
    assert calls == ([3] if cuda else [])
    assert torch.cuda.set_device is recorder  # restored after the call


def test_patch_is_idempotent():
    from mmengine.model.wrappers import MMDistributedDataParallel
    before = (MMDistributedDataParallel.__init__, mm_dist_utils._init_dist_pytorch)
    compat.patch_mmengine_cpu_distributed()
    assert (MMDistributedDataParallel.__init__, mm_dist_utils._init_dist_pytorch) == before


SCRIPT = r'''
import os, socket
with socket.socket() as s:
    s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK='0', WORLD_SIZE='1',
                  LOCAL_RANK='0')
import torch, torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
import aoissl_mm  # noqa
from mmengine.dist import init_dist, get_backend
from mmengine.model.wrappers import MMDistributedDataParallel
init_dist('pytorch', backend='gloo')   # mmengine would call torch.cuda.set_device(0) here
assert get_backend() == 'gloo'
try:
    DistributedDataParallel(nn.Linear(2, 1), device_ids=[0])
    raise SystemExit('plain DDP took device_ids for a CPU module')
except ValueError:
    pass
model = MMDistributedDataParallel(module=nn.Linear(2, 1), device_ids=[0],
                                  broadcast_buffers=False)
assert model.device_ids is None
model(torch.ones(1, 2)).sum().backward()
print('OK')
'''


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_mmengine_starts_gloo_and_wraps_a_cpu_module():
    env = {k: v for k, v in os.environ.items()
           if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    env.update(OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0 and 'OK' in proc.stdout, proc.stderr[-3000:]
