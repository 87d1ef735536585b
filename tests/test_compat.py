"""The compatibility shims: pure-torch mmcv ops and weights-only checkpoints."""
import math
import os
import os.path as osp
import pickle

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.hooks import Hook

import aoissl_mm  # noqa: F401  (applies the shims)
from aoissl_mm import compat
from aoissl_mm.utils.checkpoint import safe_torch_load


# ---------------------------------------------------------------------------
# mmcv.ops fallback
# ---------------------------------------------------------------------------
def test_mmseg_models_imports_and_ops_module_is_consistent():
    import mmcv.ops
    import mmpretrain.models  # noqa: F401
    import mmseg.models  # noqa: F401
    if compat.MMCV_OPS_FALLBACK_ACTIVE:
        assert getattr(mmcv.ops, '__aoissl_fallback__', False)
        with pytest.raises(ModuleNotFoundError, match='roi_align.*full mmcv'):
            mmcv.ops.roi_align  # noqa: B018
        with pytest.raises(AttributeError):
            mmcv.ops.__wrapped__  # noqa: B018  (dunders stay AttributeError for inspect)
    else:  # full mmcv: untouched
        assert not getattr(mmcv.ops, '__aoissl_fallback__', False)


def test_point_sample_hand_computed():
    # 1x1x2x2 map [[0, 1], [2, 3]]; with align_corners=False pixel centres are at
    # normalised 0.25 and 0.75. Point (x=0.5, y=0.5) is the mean of all four = 1.5;
    # point (x=0.25, y=0.75) is the centre of the bottom-left pixel = 2.
    feat = torch.tensor([[[[0., 1.], [2., 3.]]]])
    pts = torch.tensor([[[0.5, 0.5], [0.25, 0.75], [0.75, 0.25]]])
    out = compat.point_sample(feat, pts)
    assert out.shape == (1, 1, 3)
    assert torch.allclose(out[0, 0], torch.tensor([1.5, 2.0, 1.0]))
    # grid form (N, Hg, Wg, 2) keeps the grid dims
    out2 = compat.point_sample(feat, pts.view(1, 3, 1, 2))
    assert out2.shape == (1, 1, 3, 1)


def _focal_reference(x, target, gamma, alpha):
    # element-wise formula written out with python floats
    n, c = x.shape
    out = torch.zeros(n, c, dtype=torch.float64)
    for i in range(n):
        for j in range(c):
            p = 1.0 / (1.0 + math.exp(-float(x[i, j])))
            if int(target[i]) == j:
                out[i, j] = -alpha * (1 - p) ** gamma * math.log(p)
            else:
                out[i, j] = -(1 - alpha) * p ** gamma * math.log(1 - p)
    return out


def test_sigmoid_focal_loss_formula():
    torch.manual_seed(0)
    x = torch.randn(5, 3, dtype=torch.float64)
    target = torch.tensor([0, 2, 1, 3, 2])  # 3 == num_classes: no positive class
    ref = _focal_reference(x, target, 2.0, 0.25)
    got = compat.sigmoid_focal_loss(x, target, 2.0, 0.25, None, 'none')
    assert torch.allclose(got, ref, atol=1e-10)
    assert torch.allclose(compat.sigmoid_focal_loss(x, target, 2.0, 0.25, None, 'sum'),
                          ref.sum())
    # mmcv divides the sum by N (rows), not N*C
    assert torch.allclose(compat.sigmoid_focal_loss(x, target, 2.0, 0.25, None, 'mean'),
                          ref.sum() / 5)
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    row_w = torch.tensor([1.0, 3.0, 2.0, 1.0, 3.0], dtype=torch.float64)[:, None]
    assert torch.allclose(compat.sigmoid_focal_loss(x, target, 2.0, 0.25, w, 'none'),
                          ref * row_w)


def test_mmseg_focal_loss_wrapper_uses_the_op():
    # mmseg's CUDA path calls mmcv's op through this wrapper; run it on CPU
    from mmseg.models.losses import focal_loss as mmseg_focal
    torch.manual_seed(1)
    x = torch.randn(6, 3, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3, 1, 0])
    one_hot = F.one_hot(target, 4)[:, :3]
    got = mmseg_focal.sigmoid_focal_loss(x, target, one_hot, None, gamma=2.0, alpha=0.5,
                                         reduction='sum')
    assert torch.allclose(got, _focal_reference(x, target, 2.0, 0.5).sum())


# ---------------------------------------------------------------------------
# weights-only checkpoints
# ---------------------------------------------------------------------------
class _ToyModel(nn.Module):

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, inputs, labels, mode='tensor'):
        out = self.lin(inputs)
        if mode == 'loss':
            return {'loss': F.mse_loss(out, labels)}
        return out


def _make_runner(work_dir, max_iters, resume=False, load_from=None, custom_hooks=None):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.net = _ToyModel()

        def forward(self, inputs, labels=None, mode='tensor'):
            inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
            labels = torch.stack(labels) if isinstance(labels, list) else labels
            return self.net(inputs, labels, mode)

    data = [dict(inputs=torch.randn(3), labels=torch.randn(1)) for _ in range(8)]
    return Runner(
        model=Toy(),
        work_dir=work_dir,
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=True),
                              batch_size=2, num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-2)),
        param_scheduler=dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=1000),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=custom_hooks, resume=resume, load_from=load_from, randomness=dict(seed=0),
        default_scope=None, experiment_name=f'toy_{max_iters}_{resume}')


def test_train_save_resume_with_weights_only(tmp_path):
    work = str(tmp_path / 'work')
    runner = _make_runner(work, max_iters=2)
    runner.train()
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt)
    # a plain weights-only load of an mmengine checkpoint fails without the allow-list ...
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)
    # ... and works through the shim, scoped (nothing allow-listed process-wide)
    state = safe_torch_load(ckpt)
    assert state['meta']['iter'] == 2
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)
    weights = {k: v.clone() for k, v in state['state_dict'].items()}
    # resume and train on: iteration counter, optimizer and scheduler restored
    runner2 = _make_runner(work, max_iters=4, resume=True)
    runner2.train()
    assert runner2.iter == 4
    state4 = safe_torch_load(osp.join(work, 'iter_4.pth'))
    assert state4['meta']['iter'] == 4
    assert any(not torch.equal(weights[k], state4['state_dict'][k]) for k in weights)
    # load_from path too: the weights training starts from are the saved ones, not a fresh init
    snapshot = _WeightsAtTrainStart()
    runner3 = _make_runner(str(tmp_path / 'w3'), max_iters=1, load_from=ckpt,
                           custom_hooks=[snapshot])
    fresh = {k: v.clone() for k, v in runner3.model.state_dict().items()}
    runner3.train()
    assert set(snapshot.weights) == set(weights) == set(fresh)
    for k, v in weights.items():
        assert torch.equal(snapshot.weights[k], v), k
        assert not torch.equal(fresh[k], v), k
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ


class _WeightsAtTrainStart(Hook):
    """Copies the model's weights when training starts (after ``load_from`` was applied)."""

    def __init__(self):
        self.weights = None

    def before_train(self, runner):
        self.weights = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))


def test_reduce_payload_is_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'payload': _Evil()}, path)
    with pytest.raises(RuntimeError, match='evil.pth'):
        safe_torch_load(path)
    from mmengine.runner.checkpoint import _load_checkpoint
    with pytest.raises(RuntimeError, match='refusing to load'):
        _load_checkpoint(path)


def test_missing_checkpoint_names_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        safe_torch_load(str(tmp_path / 'nope.pth'))
