"""The DINO / iBOT teacher centres under DDP: two gloo processes on the CPU feed different teacher
outputs, and both end with the centre of the mean over BOTH ranks' batches (spec §5: "centre
momentum 0.9, all-reduced under DDP"), computed here by hand from the inputs the ranks saved.

The ranks run in a script of their own, started by torch.multiprocessing (pytest's importlib
mode gives a test module no importable name to pickle a worker by)."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

WORKER = r'''
import os, sys

import torch
import torch.multiprocessing as mp

import aoissl_mm  # noqa: F401  (registers the losses, CPU-safe mmengine launchers)
from aoissl_mm.models.losses import DINOLoss, IBOTPatchLoss
from mmengine.dist import get_world_size, init_dist


def worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    init_dist('pytorch', backend='gloo', timeout=60)
    assert get_world_size() == world
    g = torch.Generator().manual_seed(1000 + rank)
    k, b, tokens = 6, 3, 4
    dino = DINOLoss(out_channels=k, center_momentum=0.9).train()
    patch = IBOTPatchLoss(out_channels=k, center_momentum=0.8).train()
    dino.center.copy_(torch.linspace(-1.0, 1.0, k)[None])  # the same start on both ranks
    saved = dict(dino_c0=dino.center.clone(), patch_c0=patch.center.clone(), dino=[])
    for step in range(2):  # two updates: the second starts from the first's all-reduced centre
        # rank-dependent teacher outputs (shifted by 5 * rank, so the ranks' means differ)
        teacher = [torch.randn(b, k, generator=g) + 5.0 * rank for _ in range(2)]
        student = [torch.randn(b, k, generator=g) for _ in range(3)]
        dino(student, teacher)
        saved['dino'].append(torch.stack(teacher))
        saved[f'dino_c{step + 1}'] = dino.center.clone()
    t_patch = [torch.randn(b, tokens, k, generator=g) - 3.0 * rank for _ in range(2)]
    s_patch = [torch.randn(b, tokens, k, generator=g) for _ in range(2)]
    masks = [torch.rand(b, tokens, generator=g) < 0.5 for _ in range(2)]
    patch(s_patch, t_patch, masks)
    saved.update(patch=torch.stack(t_patch), patch_c1=patch.center.clone())
    torch.save(saved, os.path.join(out, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()


if __name__ == '__main__':
    port, out = int(sys.argv[1]), sys.argv[2]
    # fork: the ranks inherit the imports (no process group exists yet in this process)
    mp.start_processes(worker, args=(2, port, out), nprocs=2, join=True, start_method='fork')
    print('OK')
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    """Run the 2-process script once; the two ranks' saved inputs and centres."""
    tmp = tmp_path_factory.mktemp('ddp_centre')
    script = tmp / 'worker.py'
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items()
           if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    env.update(OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run([sys.executable, str(script), str(_free_port()), str(tmp)],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0 and 'OK' in proc.stdout, proc.stderr[-3000:]
    return [torch.load(osp.join(tmp, f'rank{r}.pt')) for r in range(2)]


def _momentum_update(center: torch.Tensor, rows: torch.Tensor, m: float) -> torch.Tensor:
    """``m c + (1 - m) mean``, the mean over every row, in float64."""
    return m * center.double() + (1 - m) * rows.double().mean(dim=0, keepdim=True)


def test_dino_centre_is_the_mean_over_both_ranks(ranks):
    r0, r1 = ranks
    assert torch.equal(r0['dino_c0'], r1['dino_c0'])
    center = r0['dino_c0']
    for step in range(2):
        # the 2 teacher views x 3 images of BOTH ranks: 12 rows of 6 prototypes
        rows = torch.cat([r['dino'][step].reshape(-1, 6) for r in ranks])
        assert rows.shape == (12, 6)
        center = _momentum_update(center, rows, 0.9)
        for r in ranks:
            torch.testing.assert_close(r[f'dino_c{step + 1}'].double(), center,
                                       rtol=0, atol=1e-6)
    # identical on both ranks, and not what either rank's own batch would give
    assert torch.equal(r0['dino_c2'], r1['dino_c2'])
    own = _momentum_update(r0['dino_c0'], r0['dino'][0].reshape(-1, 6), 0.9)
    # rank 1's outputs are 5 higher: its own mean is ~2.5 below the global one, so its own
    # centre would be ~(1 - 0.9) * 2.5 = 0.25 lower
    assert ((own - r0['dino_c1'].double()).mean() + 0.25).abs() < 0.15


def test_ibot_patch_centre_is_the_mean_over_both_ranks(ranks):
    r0, r1 = ranks
    # every token of every view (masked or not) of both ranks: 2 x (2 views x 3 x 4 tokens)
    rows = torch.cat([r['patch'].reshape(-1, 6) for r in ranks])
    assert rows.shape == (48, 6)
    expected = _momentum_update(r0['patch_c0'], rows, 0.8)
    for r in ranks:
        torch.testing.assert_close(r['patch_c1'].double(), expected, rtol=0, atol=1e-6)
    assert torch.equal(r0['patch_c1'], r1['patch_c1'])
