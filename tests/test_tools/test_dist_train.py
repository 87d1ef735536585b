"""tools/dist_train.sh on 2 CPU processes (gloo): the ranks train in step and stop together.

Each rank dumps a SHA-256 of every tensor of its own model after training (a test-only hook
written next to the config); the references are the other rank's dump and the checkpoint
rank 0 saved, read back independently. The run is stopped by the real TimeBudgetHook (a
budget of a few seconds, far below max_iters), whose decision rank 0 broadcasts.
"""
import hashlib
import json
import os
import os.path as osp
import re
import socket
import subprocess

import pytest

from aoissl_mm.utils.checkpoint import safe_torch_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAX_ITERS = 1000
BUDGET_S = 8

HOOK = '''
import hashlib, json, os.path as osp
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RankDigestHook(Hook):
    priority = 'LOWEST'

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        digest = {k: hashlib.sha256(v.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
                  for k, v in model.state_dict().items()}
        out = dict(rank=dist.get_rank(), world_size=dist.get_world_size(),
                   backend=dist.get_backend(), wrapper=type(runner.model).__name__,
                   device_ids=getattr(runner.model, 'device_ids', 'none'), iter=runner.iter,
                   stopped=bool(runner.train_loop.stop_training),
                   params=[k for k, _ in model.named_parameters()], digest=digest)
        with open(osp.join(runner.work_dir, f'rank{out["rank"]}.json'), 'w') as f:
            json.dump(out, f)
'''


def _digest(tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def tiny_dist_config(tiny_training_config, tmp_path) -> str:
    cfg = tiny_training_config('fastervit0_upernet_aoi_cpu.py', batch_size=1, num_train=4,
                               num_test=0)
    cfg.val_dataloader.batch_size = 1
    (hook, ) = cfg.custom_hooks
    assert hook.type == 'TimeBudgetHook'
    hook.update(budget_s=BUDGET_S, warmup_share=0.0)
    cfg.custom_hooks.append(dict(type='RankDigestHook'))
    cfg.custom_imports = dict(imports=['aoissl_mm', 'rank_digest_hook'],
                              allow_failed_imports=False)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=MAX_ITERS, val_interval=MAX_ITERS)
    cfg.default_hooks.checkpoint.interval = MAX_ITERS
    cfg.default_hooks.logger.interval = 1
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'  # the GPU default; gloo is picked at setup
    assert cfg.find_unused_parameters is True  # mask token and final norm get no gradient
    (tmp_path / 'rank_digest_hook.py').write_text(HOOK)
    path = str(tmp_path / 'tiny_dist.py')
    cfg.dump(path)
    return path


def test_two_cpu_processes_train_in_step_and_stop_together(tiny_dist_config, tmp_path):
    cfg_path = tiny_dist_config
    work = str(tmp_path / 'work')
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(_free_port()),
               MASTER_ADDR='127.0.0.1', CUDA_VISIBLE_DEVICES='',
               PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT, os.environ.get('PYTHONPATH', '')]))
    env.pop('RANK', None)
    env.pop('WORLD_SIZE', None)
    env.pop('LOCAL_RANK', None)
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), cfg_path, '2',
                           '--work-dir', work], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]

    ranks = [json.load(open(osp.join(work, f'rank{r}.json'))) for r in (0, 1)]
    for r, rank in enumerate(ranks):
        assert (rank['rank'], rank['world_size']) == (r, 2)
        assert rank['backend'] == 'gloo' and rank['wrapper'] == 'MMDistributedDataParallel'
        assert rank['device_ids'] is None  # a CPU module: no device_ids (compat shim)
    # both stopped by the budget, at the same iteration, well before max_iters, and after
    # iteration 2 (where unused parameters used to stop DDP)
    n_iter = ranks[0]['iter']
    assert ranks[1]['iter'] == n_iter and 2 <= n_iter < MAX_ITERS
    assert ranks[0]['stopped'] and ranks[1]['stopped']
    text = open(_rank0_log(work)).read()
    assert re.search(rf'budget of {BUDGET_S} s reached at iteration {n_iter};', text), text[-3000:]
    assert "'gloo' backend" in proc.stdout + proc.stderr + text

    # every parameter identical on both ranks and in the checkpoint (read independently)
    ckpt = safe_torch_load(osp.join(work, f'iter_{n_iter}.pth'))
    state = ckpt['state_dict']
    params = ranks[0]['params']
    assert params == ranks[1]['params'] and set(params) <= set(state)
    for name in params:
        assert ranks[0]['digest'][name] == ranks[1]['digest'][name] == _digest(state[name]), name
    # rank 0 saved the checkpoint: all of its tensors, buffers included; BN running
    # statistics are the only tensors that differ between ranks (each rank's own batches;
    # mmengine's DDP does not broadcast buffers)
    assert ranks[0]['digest'] == {k: _digest(v) for k, v in state.items()}
    differ = {k for k, v in ranks[0]['digest'].items() if ranks[1]['digest'][k] != v}
    assert all(re.search(r'\.running_(mean|var)$', k) for k in differ), sorted(differ)
    # the optimiser took one step per iteration
    steps = {int(s['step']) for s in ckpt['optimizer']['state'].values()}
    assert steps == {n_iter}
    assert ckpt['meta']['iter'] == n_iter


def _rank0_log(work: str) -> str:
    logs = [osp.join(work, d, f) for d in os.listdir(work) if osp.isdir(osp.join(work, d))
            for f in os.listdir(osp.join(work, d)) if f.endswith('.log')]
    assert len(logs) == 1, logs
    return logs[0]
