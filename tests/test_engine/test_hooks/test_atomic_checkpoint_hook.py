"""Nothing lost on a crash: a training process SIGKILLed while it writes a checkpoint.

The child runs ``tools/train.py`` (4 iterations, a checkpoint every 2, one kept) with
``torch.save`` wrapped so that writing the iteration-4 checkpoint stops after half of its
bytes, fsyncs them and signals the parent, which then kills it. Compared against what must
hold after a crash: the iteration-2 checkpoint and ``last_checkpoint`` load weights-only,
no file exists under the iteration-4 name, and ``--resume`` finishes the run. The control
runs mmengine's own ``CheckpointHook``, which removes the iteration-2 file before writing.
"""
import io
import os
import os.path as osp
import runpy
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from aoissl_mm.utils.checkpoint import safe_torch_load

from .conftest import ROOT

# the child: torch.save stalls half-way through the file named ".<target>.<pid>...tmp"
# (the atomic writer's temporary file) or "<target>" itself
_CHILD = textwrap.dedent('''
    import io, os, runpy, sys, time
    import torch
    marker, target = sys.argv[1], sys.argv[2]
    real_save = torch.save

    def stalling_save(obj, f, *args, **kwargs):
        name = os.path.basename(str(getattr(f, 'name', '')))
        if name == target or name.startswith('.' + target + '.'):
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            f.write(data[:len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            with open(marker, 'w') as m:
                m.write(f'{f.name} {len(data)}')
            time.sleep(600)
        return real_save(obj, f, *args, **kwargs)

    torch.save = stalling_save
    sys.argv = ['train.py'] + sys.argv[3:]
    runpy.run_path(os.path.join(%r, 'tools', 'train.py'), run_name='__main__')
''' % ROOT)


def _train_and_kill_while_saving(tmp_path, cfg, work, target='iter_4.pth', timeout=300):
    """Run the child until it is half-way through ``target``, SIGKILL it; return the marker."""
    script, marker = tmp_path / 'child.py', tmp_path / f'{osp.basename(work)}.stalled'
    script.write_text(_CHILD)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    log = open(tmp_path / f'{osp.basename(work)}.log', 'w')
    proc = subprocess.Popen([sys.executable, str(script), str(marker), target, cfg,
                             '--work-dir', work], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + timeout
        while not marker.exists() or not marker.read_text():
            assert proc.poll() is None, f'training ended (rc {proc.returncode}) before ' \
                f'writing {target}; see {log.name}'
            assert time.time() < deadline, f'no {target} write within {timeout} s'
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    tmp_name, size = marker.read_text().split()
    return tmp_name, int(size)


def test_sigkill_while_saving_leaves_the_previous_checkpoint(tiny_iter_config, tmp_path,
                                                             monkeypatch):
    cfg = tiny_iter_config()
    work = str(tmp_path / 'work')
    tmp_name, size = _train_and_kill_while_saving(tmp_path, cfg, work)

    # the half-written bytes went to a temporary file, never to the final name
    assert osp.dirname(tmp_name) == work and osp.basename(tmp_name).startswith('.iter_4.pth.')
    assert os.path.getsize(tmp_name) == size // 2
    assert not osp.exists(osp.join(work, 'iter_4.pth'))
    # the previous checkpoint is complete and weights-only readable, and last_checkpoint
    # names it (max_keep_ckpts=1: mmengine's hook would have removed it before saving)
    with open(osp.join(work, 'last_checkpoint')) as f:
        last = f.read()
    assert last == osp.join(work, 'iter_2.pth')
    ckpt = safe_torch_load(last)
    assert ckpt['meta']['iter'] == 2 and 'rng_state' in ckpt and ckpt['state_dict']
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == [
        'best_mIoU_iter_2.pth', 'iter_2.pth']

    # and the run goes on: --resume (auto: last_checkpoint) trains iterations 3 and 4
    monkeypatch.setattr(sys, 'argv', ['train.py', cfg, '--work-dir', work, '--resume'])
    runpy.run_path(osp.join(ROOT, 'tools', 'train.py'), run_name='__main__')
    assert safe_torch_load(osp.join(work, 'iter_4.pth'))['meta']['iter'] == 4
    assert not osp.exists(osp.join(work, 'iter_2.pth'))  # removed once iter_4 was saved
    assert not osp.exists(tmp_name)  # the killed writer's temporary file, removed at start


def test_control_mmengine_hook_removes_the_previous_checkpoint_first(tiny_iter_config,
                                                                      tmp_path):
    cfg = tiny_iter_config(name='plain_hook.py',
                           changes={'default_hooks.checkpoint.type': 'CheckpointHook'})
    work = str(tmp_path / 'work')
    _train_and_kill_while_saving(tmp_path, cfg, work)
    assert not osp.exists(osp.join(work, 'iter_2.pth'))  # removed before iter_4 was written
    assert not osp.exists(osp.join(work, 'iter_4.pth'))


# ---------------------------------------------------------------- the writer behind it
def test_mmengine_save_checkpoint_is_atomic_for_local_files(tmp_path, monkeypatch):
    from mmengine.runner import checkpoint as mm_checkpoint
    from mmengine.runner import runner as mm_runner

    from aoissl_mm import compat
    assert mm_checkpoint.save_checkpoint is compat.save_checkpoint_atomic
    assert mm_runner.save_checkpoint is compat.save_checkpoint_atomic
    path = str(tmp_path / 'ckpt.pth')
    mm_checkpoint.save_checkpoint({'w': torch.arange(3.)}, path)
    assert torch.equal(safe_torch_load(path)['w'], torch.arange(3.))
    # a failure half-way through leaves the old file and no temporary file
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[:100])
        raise OSError('disk full')

    monkeypatch.setattr(torch, 'save', failing_save)
    with pytest.raises(OSError, match='disk full'):
        mm_checkpoint.save_checkpoint({'w': torch.zeros(1000)}, path)
    monkeypatch.undo()
    assert torch.equal(safe_torch_load(path)['w'], torch.arange(3.))
    assert os.listdir(tmp_path) == ['ckpt.pth']
