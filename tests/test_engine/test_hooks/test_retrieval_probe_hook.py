"""RetrievalProbeHook: a quick retrieval mIoU of the live student backbone during SSL."""
import copy
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import Runner

from aoissl_mm.datasets.synthetic import generate_synthetic_aoi

CROP = 32


def _loader(root, split):
    return dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(type='AOIDataset', data_root=root,
                             data_prefix=dict(img_path=f'images/{split}',
                                              seg_map_path=f'labels/{split}'),
                             pipeline=[dict(type='LoadAOIImage'),
                                       dict(type='LoadMultiLabelAnnotations'),
                                       dict(type='PadCenterCrop', size=CROP),
                                       dict(type='PackMultiLabelSegInputs')]))


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('probe') / 'data')
    generate_synthetic_aoi(root, num_train=3, num_val=2, num_test=0, num_pretrain=0,
                           num_families=1, size_range=(100, 120), progress=False)
    return root


def test_probe_scores_live_backbone_without_freezing_it(root, seg_scope):
    from mmpretrain.registry import MODELS as PRE_MODELS
    from mmseg.registry import MODELS as SEG_MODELS

    from aoissl_mm.engine.hooks import RetrievalProbeHook
    torch.manual_seed(0)
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        backbone = PRE_MODELS.build(dict(type='AOIViT', arch='tiny', in_channels=2, img_size=64,
                                         patch_size=16))
        pre = PRE_MODELS.build(dict(type='AOISelfSupDataPreprocessor'))
    model = torch.nn.Module()
    model.backbone, model.data_preprocessor = backbone, pre
    model.train()
    hub = MessageHub.get_instance('probe_test')
    runner = SimpleNamespace(model=model, seed=0, iter=9, message_hub=hub,
                             build_dataloader=Runner.build_dataloader)
    hook = RetrievalProbeHook(_loader(root, 'train'), _loader(root, 'val'), interval=5, k=3)
    hook._run(runner, 10)
    # the student is left as it was: training mode, trainable
    assert backbone.training and all(p.requires_grad for p in backbone.parameters())
    got = {k: hub.get_scalar(f'probe/{k}').current() for k in ('mIoU', 'IoU.wire')}
    # independent check: a frozen copy in a RetrievalSegmentor, IoU summed by hand
    seg = SEG_MODELS.build(dict(
        type='RetrievalSegmentor', backbone=dict(type='AOIViT', arch='tiny', in_channels=2,
                                                 img_size=64, patch_size=16),
        num_classes=4, k=3, threshold=0.3, beta=0.02, aggregation='attention',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[45.42, 59.82],
                               std=[56.70, 69.03], bgr_to_rgb=False)))
    seg.backbone.load_state_dict(copy.deepcopy(backbone.state_dict()))
    seg.build_memory(Runner.build_dataloader(_loader(root, 'train')), progress=False)
    inter, union = np.zeros(4), np.zeros(4)
    for data in Runner.build_dataloader(_loader(root, 'val')):
        data = seg.data_preprocessor(data, False)
        for s in seg.predict(data['inputs'], data['data_samples']):
            p = s.pred_sem_seg.data.numpy().astype(bool)
            g = s.gt_sem_seg.data.numpy() == 1
            inter += (p & g).reshape(4, -1).sum(1)
            union += (p | g).reshape(4, -1).sum(1)
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan) * 100
    assert got['IoU.wire'] == pytest.approx(iou[0], abs=1e-6)
    assert got['mIoU'] == pytest.approx(np.nanmean(iou), abs=1e-6)
    assert 0 <= got['mIoU'] <= 100


def test_probe_is_in_the_paper_protocol_ssl_configs():
    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    for name in ('mae_vit-tiny_budget8h_aoi-512.py', 'dino_vit-tiny_budget8h_aoi-224.py',
                 'ibot_fastervit0_budget8h_aoi-224.py'):
        cfg = Config.fromfile(osp.join(root, 'configs', 'selfsup', name))
        (probe, ) = [h for h in cfg.custom_hooks if h.type == 'RetrievalProbeHook']
        assert (probe.k, probe.threshold, probe.beta) == (30, 0.3, 0.02)
    for name in ('mae_vit-tiny_budget20min_aoi-256.py', 'mae_fastervit0_budget20min_aoi-256.py',
                 'dino_vit-tiny_budget20min_aoi-128.py', 'ibot_vit-tiny_budget20min_aoi-128.py',
                 'ibot_fastervit0_budget20min_aoi-128.py'):
        # the CPU recipes probe once, when their time budget ends
        cfg = Config.fromfile(osp.join(root, 'configs', 'selfsup', name))
        (probe, ) = [h for h in cfg.custom_hooks if h.type == 'RetrievalProbeHook']
        assert probe.interval is None and (probe.k, probe.threshold) == (30, 0.3)
    from aoissl_mm.engine.hooks import RetrievalProbeHook
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match='interval'):
            RetrievalProbeHook({}, {}, interval=bad)


@pytest.mark.parametrize('interval, stop_after, expected', [
    (None, 7, [7]),          # a time budget stops at 7 of max_iters 100: one probe, at the end
    (3, 7, [3, 6, 7]),       # periodic probes, then the end
    (3, 6, [3, 6]),          # stopped right after a probe: not probed twice
    (None, 100, [100]),      # max_iters reached: the last iteration's probe, none after it
    (4, 100, list(range(4, 101, 4))),
    (None, 0, []),           # --resume of a finished run: no iteration here, no probe
])
def test_probe_schedule_and_final_probe(interval, stop_after, expected):
    from aoissl_mm.engine.hooks import RetrievalProbeHook
    hook = RetrievalProbeHook({}, {}, interval=interval)
    calls = []
    hook._run = lambda runner, done: calls.append(done)
    runner = SimpleNamespace(iter=0, max_iters=100)
    for i in range(stop_after):  # mmengine's IterBasedTrainLoop: runner.iter counts done iters
        runner.iter = i
        hook.after_train_iter(runner, i)
    runner.iter = stop_after if stop_after else 100
    hook.after_train(runner)
    assert calls == expected
