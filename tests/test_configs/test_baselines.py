"""The baseline configs build with 2 input channels and train/predict multi-label."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize('name,size', [
    ('deeplabv3plus_r18_budget8h_aoi-512.py', 64),
    ('lraspp_mobilenetv3_budget8h_aoi-512.py', 416),  # LR-ASPP pools with a 49x49 window at /8
    ('fcn_unet_budget8h_aoi-512.py', 64),
])
def test_baseline_loss_and_predict(name, size):
    from mmseg.registry import MODELS

    from aoissl_mm.utils import check_dataset_classes
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'baselines', name))
    check_dataset_classes(cfg, fill_class_names=True)  # as tools/train.py does
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    torch.manual_seed(0)
    inputs = [torch.randint(0, 256, (2, size, size), dtype=torch.uint8) for _ in range(2)]
    samples = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=(torch.rand(4, size, size) > 0.7).to(torch.uint8))
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size)))
        samples.append(s)
    model.train()
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)
    losses = model(**data, mode='loss')
    assert set(losses) >= {'decode.loss_bce', 'decode.acc_wire', 'decode.acc_seg'}
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    first_conv = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 2 and first_conv.weight.grad is not None
    model.eval()
    with torch.no_grad():
        out = model.test_step(dict(inputs=inputs, data_samples=samples))
    pred = out[0].pred_sem_seg.data
    assert pred.shape == (4, size, size) and set(pred.unique().tolist()) <= {0, 1}
    # independent of the prediction path: the network's logits at the input size, sigmoid >= 0.5
    test_data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), False)
    with torch.no_grad():
        logits = model.encode_decode(test_data['inputs'],
                                     [s.metainfo for s in test_data['data_samples']])
    assert logits.shape == (2, 4, size, size)
    assert torch.equal(pred.bool(), torch.sigmoid(logits[0]) >= 0.5)
    assert torch.allclose(out[1].seg_logits.data, torch.sigmoid(logits[1]), atol=1e-6)
