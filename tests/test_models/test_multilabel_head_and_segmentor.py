"""Tests of MultiLabelUPerHead and MultiLabelEncoderDecoder (tiny dummy backbone)."""
import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.models.decode_heads.psp_head import PPM
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import aoissl_mm  # noqa: F401  (registers the plugin)
from aoissl_mm.models.decode_heads import AOIMaxPPM


@MODELS.register_module(name='_TinyTestBackbone', force=True)
class _TinyTestBackbone(nn.Module):
    """Four maps of 8/16/32/32 channels at strides 8/16/32/32."""

    def __init__(self, in_channels: int = 2) -> None:
        super().__init__()
        self.stage1 = nn.Conv2d(in_channels, 8, 8, stride=8)
        self.stage2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.stage3 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.stage4 = nn.Conv2d(32, 32, 1)

    def forward(self, x):
        f1 = self.stage1(x)
        f2 = self.stage2(f1)
        f3 = self.stage3(f2)
        return f1, f2, f3, self.stage4(f3)

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        num_layers = 6
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        return int(name.split('.')[0][len('stage'):]), num_layers


@MODELS.register_module(name='_TinyTestBackboneNoDepth', force=True)
class _TinyTestBackboneNoDepth(_TinyTestBackbone):
    get_layer_depth = None


NORM = dict(type='BN', requires_grad=True)


@pytest.fixture(autouse=True)
def _mmseg_scope():
    # As in an mmseg config (default_scope='mmseg'): the segmentor builds its
    # data_preprocessor from the current default scope. Restored afterwards.
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def head_cfg(**kw):
    cfg = dict(type='MultiLabelUPerHead', in_channels=[8, 16, 32, 32], in_index=[0, 1, 2, 3],
               channels=16, num_classes=4, norm_cfg=NORM, align_corners=False)
    cfg.update(kw)
    return cfg


def model_cfg(head=None, **kw):
    cfg = dict(
        type='MultiLabelEncoderDecoder',
        backbone=dict(type='_TinyTestBackbone'),
        decode_head=head or head_cfg(),
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[45.42, 59.82],
                               std=[56.7, 69.03], size_divisor=32, pad_val=0, seg_pad_val=255,
                               bgr_to_rgb=False),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    cfg.update(kw)
    return ConfigDict(cfg)  # as built from a config file (attribute access to test_cfg)


def _feats(n=2, h=64, w=64):
    torch.manual_seed(0)
    return _TinyTestBackbone()(torch.randn(n, 2, h, w))


def _sample(gt):
    s = SegDataSample()
    s.gt_sem_seg = PixelData(data=gt)
    return s


# ----------------------------------------------------------------------------- head
def test_head_forward_shape():
    head = MODELS.build(head_cfg())
    out = head(_feats())
    assert out.shape == (2, 4, 8, 8)


def test_max_aoi_ppm_structure():
    head = MODELS.build(head_cfg())
    assert isinstance(head.psp_modules, AOIMaxPPM)
    assert head.pool_scales == (2, 4, 8, 16)
    assert head.dropout is None
    for branch, scale in zip(head.psp_modules, (2, 4, 8, 16)):
        pool, conv = branch
        assert isinstance(pool, nn.AdaptiveMaxPool2d) and pool.output_size == scale
        assert conv.conv.in_channels == 32 and conv.conv.out_channels == 8  # E / 4
        assert conv.conv.bias is None and isinstance(conv.bn, nn.BatchNorm2d)
        assert conv.conv.kernel_size == (1, 1)
    assert head.bottleneck.conv.in_channels == 64  # 2E
    assert head.bottleneck.conv.out_channels == 16
    assert head.pre_cls_conv.conv.kernel_size == (3, 3)
    assert head.pre_cls_conv.conv.in_channels == head.pre_cls_conv.conv.out_channels == 16
    assert MODELS.build(head_cfg(extra_conv=False)).pre_cls_conv is None


def test_mmseg_pool_type_structure():
    head = MODELS.build(head_cfg(pool_type='mmseg'))
    assert isinstance(head.psp_modules, PPM) and not isinstance(head.psp_modules, AOIMaxPPM)
    assert head.pool_scales == (1, 2, 3, 6)
    assert isinstance(head.psp_modules[0][0], nn.AdaptiveAvgPool2d)
    assert head.bottleneck.conv.in_channels == 32 + 4 * 16
    assert head(_feats()).shape == (2, 4, 8, 8)


def test_max_ppm_forward_hand_computed():
    # One branch, scale 2, conv weights = 1 (sums the 4 channels), no norm/act:
    # branch = sum_c maxpool2x2(x_c), upsampled 2x2 -> 4x4 (bilinear, align_corners=True
    # so the 4 corners keep the pooled values exactly).
    ppm = AOIMaxPPM((2, ), 4, 1, conv_cfg=None, norm_cfg=None, act_cfg=None,
                    align_corners=True)
    nn.init.constant_(ppm[0][1].conv.weight, 1.0)
    x = torch.zeros(1, 4, 4, 4)
    x[0, 0, 0, 1] = 3.0   # top-left block max of channel 0
    x[0, 1, 1, 0] = 2.0   # top-left block max of channel 1
    x[0, 2, 3, 3] = 5.0   # bottom-right block, channel 2
    x[0, 3, 0, 3] = -1.0  # top-right block: max of channel 3 there is 0
    out = ppm(x)[0][0, 0]
    assert out[0, 0].item() == pytest.approx(5.0)   # 3 + 2 + 0 + 0
    assert out[0, 3].item() == pytest.approx(0.0)
    assert out[3, 0].item() == pytest.approx(0.0)
    assert out[3, 3].item() == pytest.approx(5.0)


def test_head_rejects_bad_config():
    with pytest.raises(ValueError, match='out_channels'):
        MODELS.build(head_cfg(out_channels=1))
    with pytest.raises(ValueError, match='use_sigmoid'):
        MODELS.build(head_cfg(loss_decode=dict(type='CrossEntropyLoss')))
    with pytest.raises(ValueError, match='pool_type'):
        MODELS.build(head_cfg(pool_type='avg'))
    with pytest.raises(ValueError, match="last .width. axis.*MultiLabelBCELoss"):
        MODELS.build(head_cfg(loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True,
                                               class_weight=[1.0, 1.0, 5.0, 1.0])))
    with pytest.raises(ValueError, match='class_names'):
        MODELS.build(head_cfg(class_names=['a', 'b']))


def test_loss_equals_masked_bce_and_per_class_accuracy():
    head = MODELS.build(head_cfg(class_names=['wire', 'ball', 'wedge', 'epoxy']))
    # Hand-built logits at the label size (1, 4, 1, 3); the resize is the identity.
    logits = torch.tensor([[[[0.3, -0.1, 2.0]],
                            [[-1.0, 1.0, 0.0]],
                            [[0.5, 0.5, -0.5]],
                            [[-2.0, 3.0, 1.0]]]])
    gt = torch.tensor([[[1, 1, 255]],
                       [[0, 0, 1]],
                       [[255, 255, 255]],
                       [[0, 1, 0]]], dtype=torch.uint8)
    losses = head.loss_by_feat(logits, [_sample(gt)])
    valid = gt[None] != 255
    expected = F.binary_cross_entropy_with_logits(logits[valid], gt[None][valid].float())
    assert set(losses) == {'loss_bce', 'acc_wire', 'acc_ball', 'acc_wedge', 'acc_epoxy',
                           'acc_seg'}
    assert losses['loss_bce'].item() == pytest.approx(expected.item(), abs=1e-6)
    # sigmoid >= 0.5 <=> logit >= 0:
    # wire : pred [1, 0] vs [1, 1] -> 1/2 = 50%
    # ball : pred [0, 1, 1] vs [0, 0, 1] -> 2/3 = 66.667%
    # wedge: no valid element -> 0 and excluded from acc_seg
    # epoxy: pred [0, 1, 1] vs [0, 1, 0] -> 2/3 = 66.667%
    assert losses['acc_wire'].item() == pytest.approx(50.0)
    assert losses['acc_ball'].item() == pytest.approx(200 / 3, abs=1e-4)
    assert losses['acc_wedge'].item() == 0.0
    assert losses['acc_epoxy'].item() == pytest.approx(200 / 3, abs=1e-4)
    assert losses['acc_seg'].item() == pytest.approx((50 + 200 / 3 + 200 / 3) / 3, abs=1e-4)


def test_single_class_head_loss():
    head = MODELS.build(head_cfg(
        num_classes=1,
        loss_decode=[dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True,
                          loss_name='loss_bce'),
                     dict(type='MultiLabelDiceLoss')]))
    logits = torch.tensor([[[[0.0, 2.0, -1.0]]]])
    gt = torch.tensor([[[1, 0, 255]]], dtype=torch.uint8)
    losses = head.loss_by_feat(logits, [_sample(gt)])
    # BCE: (ln2 + ln(1 + e^2)) / 2 = (0.693147 + 2.126928) / 2 = 1.410038
    assert losses['loss_bce'].item() == pytest.approx(1.410038, abs=1e-5)
    # Dice: p = [0.5, 0.880797], t = [1, 0]: 1 - 2 * 0.5 / (1.380797 + 1) = 0.579972
    assert losses['loss_dice'].item() == pytest.approx(0.579972, abs=1e-5)
    assert losses['acc_c0'].item() == pytest.approx(50.0)


def test_loss_list_bce_plus_dice_and_same_name_sum():
    head = MODELS.build(head_cfg(
        num_classes=2,
        loss_decode=[dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True,
                          loss_name='loss_bce'),
                     dict(type='MultiLabelDiceLoss')]))
    l3 = math.log(3.0)
    logits = torch.tensor([[[[0.0, l3], [-l3, 0.0]], [[1.0, -2.0], [0.5, 3.0]]]])
    gt = torch.tensor([[[1, 1], [0, 255]], [[0, 0], [0, 255]]], dtype=torch.uint8)
    losses = head.loss_by_feat(logits, [_sample(gt)])
    assert {'loss_bce', 'loss_dice', 'acc_c0', 'acc_c1', 'acc_seg'} == set(losses)
    # Dice: class 0 loss 1 - 2*1.25/3.5 = 0.285714, class 1 absent -> mean 0.142857
    assert losses['loss_dice'].item() == pytest.approx(0.142857, abs=1e-5)
    # Same loss_name: the two values are summed into one log item.
    head2 = MODELS.build(head_cfg(
        num_classes=2,
        loss_decode=[dict(type='MultiLabelDiceLoss', loss_name='loss_seg'),
                     dict(type='MultiLabelJaccardLoss', loss_name='loss_seg')]))
    losses2 = head2.loss_by_feat(logits, [_sample(gt)])
    # Jaccard: class 0 loss 1 - 1.25/2.25 = 0.444444 -> mean 0.222222
    assert losses2['loss_seg'].item() == pytest.approx(0.142857 + 0.222222, abs=1e-5)


def test_loss_resizes_logits_and_checks_gt_shape():
    head = MODELS.build(head_cfg())
    feats = _feats(n=1)
    gt = torch.zeros(4, 64, 64, dtype=torch.uint8)
    losses = head.loss(feats, [_sample(gt)], dict())
    assert torch.isfinite(losses['loss_bce'])
    with pytest.raises(ValueError, match='gt_sem_seg'):
        head.loss(feats, [_sample(torch.zeros(1, 64, 64, dtype=torch.uint8))], dict())


# ----------------------------------------------------------------------------- segmentor
def test_postprocess_thresholds_on_probabilities():
    model = MODELS.build(model_cfg())
    # sigmoid(0.3) = 0.5744 -> positive at 0.5; sigmoid(-0.1) = 0.4750 -> negative
    logits = torch.tensor([0.3, -0.1, 0.3, -0.1]).view(1, 4, 1, 1).repeat(1, 1, 2, 2)
    # postprocess_result takes the probabilities that inference() returns
    out = model.postprocess_result(logits.sigmoid())[0]
    assert out.pred_sem_seg.data.dtype == torch.uint8
    assert out.pred_sem_seg.data.shape == (4, 2, 2)
    assert out.pred_sem_seg.data[:, 0, 0].tolist() == [1, 0, 1, 0]
    assert out.seg_logits.data[0, 0, 0].item() == pytest.approx(0.574443, abs=1e-5)
    # per-class thresholds
    per_class = MODELS.build(model_cfg(threshold=[0.6, 0.45, 0.5, 0.5]))
    out = per_class.postprocess_result(logits.sigmoid())[0]
    assert out.pred_sem_seg.data[:, 0, 0].tolist() == [0, 1, 1, 0]


def test_threshold_validation():
    with pytest.raises(ValueError, match='4'):
        MODELS.build(model_cfg(threshold=[0.5, 0.5]))
    with pytest.raises(ValueError, match=r'\(0, 1\)'):
        MODELS.build(model_cfg(threshold=1.2))
    with pytest.raises(ValueError, match=r'\(0, 1\)'):
        MODELS.build(model_cfg(threshold=[0.5, 0.5, 0.0, 0.5]))


def test_postprocess_unpads_flips_and_resizes():
    model = MODELS.build(model_cfg())
    # (1, 4, 3, 4) logits; padding (left, right, top, bottom) = (0, 1, 0, 1) leaves 2 x 3.
    logits = torch.full((1, 4, 3, 4), -5.0)
    logits[0, 2, 0, 0] = 5.0   # top-left of the unpadded area
    logits[0, :, :, 3] = 9.0   # padding column, must be removed
    sample = SegDataSample(metainfo=dict(padding_size=[0, 1, 0, 1], flip=True,
                                         flip_direction='horizontal', ori_shape=(2, 3)))
    out = model.postprocess_result(logits.sigmoid(), [sample])[0]
    pred = out.pred_sem_seg.data
    assert pred.shape == (4, 2, 3)
    expected = torch.zeros(4, 2, 3, dtype=torch.uint8)
    expected[2, 0, 2] = 1  # flipped horizontally: column 0 -> column 2
    assert torch.equal(pred, expected)
    bad = SegDataSample(metainfo=dict(flip=True, flip_direction='diagonal', ori_shape=(3, 4)))
    with pytest.raises(ValueError, match='flip_direction'):
        model.postprocess_result(logits.sigmoid(), [bad])


def test_slide_inference_averages_probabilities():
    model = MODELS.build(model_cfg(test_cfg=dict(mode='slide', crop_size=(1, 2),
                                                 stride=(1, 1))))
    # Image 1 x 3 -> windows x in [0, 2) and [1, 3); pixel x = 1 is covered twice.
    window_logits = [torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 2.0])]
    calls = []

    def fake_encode_decode(crop, metas):
        calls.append((tuple(crop.shape), tuple(metas[0]['img_shape'])))
        return window_logits[len(calls) - 1].view(1, 1, 1, 2).repeat(1, 4, 1, 1)

    model.encode_decode = fake_encode_decode
    inputs = torch.zeros(1, 2, 1, 3)
    out = model.slide_inference(inputs, [dict(ori_shape=(1, 3), img_shape=(1, 3))])
    assert calls == [((1, 2, 1, 2), (1, 2)), ((1, 2, 1, 2), (1, 2))]
    probs = out[0, 0, 0]   # probabilities, not logits
    # x = 1: (sigmoid(3) + sigmoid(-1)) / 2 = (0.952574 + 0.268941) / 2 = 0.610758
    # (averaging logits would give sigmoid(1) = 0.731059)
    assert probs[1].item() == pytest.approx(0.610758, abs=1e-5)
    assert probs[0].item() == pytest.approx(0.731059, abs=1e-5)  # sigmoid(1)
    assert probs[2].item() == pytest.approx(0.880797, abs=1e-5)  # sigmoid(2)
    # threshold 0.7 separates the two rules at x = 1
    model.thresholds = (0.7, ) * 4
    pred = model.postprocess_result(out)[0].pred_sem_seg.data[0, 0]
    assert pred.tolist() == [1, 0, 1]


def test_slide_inference_full_size_and_consistent_with_whole():
    torch.manual_seed(0)
    slide = MODELS.build(model_cfg(test_cfg=dict(mode='slide', crop_size=(32, 32),
                                                 stride=(24, 24)))).eval()
    image = torch.randint(0, 255, (2, 70, 50), dtype=torch.uint8)
    data = slide.data_preprocessor(
        dict(inputs=[image], data_samples=[SegDataSample(metainfo=dict(
            ori_shape=(70, 50), img_shape=(70, 50)))]), False)
    with torch.no_grad():
        out = slide.predict(data['inputs'], data['data_samples'])[0]
    assert out.pred_sem_seg.data.shape == (4, 70, 50)
    assert out.seg_logits.data.shape == (4, 70, 50)
    # a crop as large as the image: one window, so slide == whole
    whole = copy.deepcopy(slide)
    whole.test_cfg = ConfigDict(mode='whole')
    slide.test_cfg = ConfigDict(mode='slide', crop_size=(96, 96), stride=(64, 64))
    x = torch.randn(1, 2, 64, 64)
    metas = [dict(ori_shape=(64, 64), img_shape=(64, 64), pad_shape=(64, 64))]
    with torch.no_grad():
        a = slide.inference(x, copy.deepcopy(metas))
        b = whole.inference(x, copy.deepcopy(metas))
    assert torch.allclose(a, b, atol=1e-6)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0   # both return probabilities


def test_get_layer_depth_delegation_and_lr_decay_constructor():
    from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
    model = MODELS.build(model_cfg())
    assert model.get_layer_depth('backbone.stage2.weight') == (2, 6)
    assert model.get_layer_depth('decode_head.conv_seg.weight') == (5, 6)
    ctor = LearningRateDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        dict(layer_decay_rate=0.5))
    groups = ctor(model).optimizer.param_groups
    lr = {g['param_name']: g['lr'] for g in groups}
    assert lr['backbone.stage1.weight'] == pytest.approx(0.5**4)  # 0.5 ** (6 - 1 - 1)
    assert lr['backbone.stage4.weight'] == pytest.approx(0.5**1)
    assert lr['decode_head.conv_seg.weight'] == pytest.approx(1.0)
    no_depth = MODELS.build(model_cfg(backbone=dict(type='_TinyTestBackboneNoDepth')))
    with pytest.raises(NotImplementedError, match='_TinyTestBackboneNoDepth'):
        no_depth.get_layer_depth('backbone.stage1.weight')


def test_segmentor_requires_multilabel_heads_and_hands_them_its_thresholds():
    model = MODELS.build(model_cfg(threshold=[0.6, 0.45, 0.5, 0.5]))
    assert model.decode_head.thresholds == (0.6, 0.45, 0.5, 0.5)
    stock = dict(type='FCNHead', in_channels=32, in_index=3, channels=8, num_convs=1, num_classes=4,
                 out_channels=4, loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True))
    with pytest.raises(TypeError, match='decode_head must be a multi-label head.*FCNHead'):
        MODELS.build(model_cfg(head=stock))


def test_end_to_end_loss_and_predict_with_padding():
    torch.manual_seed(0)
    model = MODELS.build(model_cfg())
    model.data_preprocessor.test_cfg = dict(size_divisor=32)
    images = [torch.randint(0, 255, (2, 50, 45), dtype=torch.uint8),
              torch.randint(0, 255, (2, 40, 60), dtype=torch.uint8)]
    gts = [(torch.rand(4, 50, 45) > 0.5).to(torch.uint8),
           (torch.rand(4, 40, 60) > 0.5).to(torch.uint8)]
    samples = [SegDataSample(metainfo=dict(ori_shape=tuple(im.shape[1:]),
                                           img_shape=tuple(im.shape[1:])))
               for im in images]
    for s, gt in zip(samples, gts):
        s.gt_sem_seg = PixelData(data=gt.clone())
    data = model.data_preprocessor(dict(inputs=images, data_samples=samples), True)
    inputs, data_samples = data['inputs'], data['data_samples']
    assert inputs.shape == (2, 2, 64, 64)
    padded_gt = torch.stack([s.gt_sem_seg.data for s in data_samples])
    assert padded_gt.shape == (2, 4, 64, 64) and (padded_gt == 255).any()

    model.train()
    losses = model.loss(inputs, data_samples)
    assert {'decode.loss_bce', 'decode.acc_seg'} <= set(losses)
    # independent reference: BCE over the original (unpadded) areas only
    with torch.no_grad():
        logits = model.decode_head(model.extract_feat(inputs))
        logits = F.interpolate(logits, size=(64, 64), mode='bilinear', align_corners=False)
    elems = []
    for i, gt in enumerate(gts):
        h, w = gt.shape[1:]
        elems.append(F.binary_cross_entropy_with_logits(
            logits[i, :, :h, :w], gt.float(), reduction='none').flatten())
    expected = torch.cat(elems).mean()
    assert losses['decode.loss_bce'].item() == pytest.approx(expected.item(), rel=1e-5)
    parsed, log_vars = model.parse_losses(losses)
    parsed.backward()
    assert model.decode_head.conv_seg.weight.grad is not None

    model.eval()
    test_images = [images[0]]
    test_samples = [SegDataSample(metainfo=dict(ori_shape=(50, 45), img_shape=(50, 45)))]
    data = model.data_preprocessor(dict(inputs=test_images, data_samples=test_samples), False)
    assert data['inputs'].shape == (1, 2, 64, 64)
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])[0]
        ref_logits = model.decode_head(model.extract_feat(data['inputs']))
        ref_logits = F.interpolate(ref_logits, size=(64, 64), mode='bilinear',
                                   align_corners=False)[0, :, :50, :45]
    probs, pred = out.seg_logits.data, out.pred_sem_seg.data
    assert probs.shape == pred.shape == (4, 50, 45)
    assert pred.dtype == torch.uint8 and set(pred.unique().tolist()) <= {0, 1}
    assert torch.allclose(probs, torch.sigmoid(ref_logits), atol=1e-6)
    assert torch.equal(pred, (torch.sigmoid(ref_logits) >= 0.5).to(torch.uint8))


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_vit_window_not_multiple_of_patch_is_padded_with_black_and_cropped_back(mode):
    """ViT-Tiny needs multiples of 16; the data preprocessor pads only training batches."""
    torch.manual_seed(0)
    test_cfg = dict(mode='whole') if mode == 'whole' else \
        dict(mode='slide', crop_size=(64, 64), stride=(48, 48))
    model = MODELS.build(model_cfg(
        backbone=dict(type='AOIViT', arch='tiny', img_size=32, out_indices=(2, 3, 4, 5)),
        decode_head=head_cfg(in_channels=[384] * 4), test_cfg=test_cfg)).eval()
    assert model.window_divisor == 16
    inputs = torch.randn(2, 2, 40, 45)  # smaller than the slide window too
    meta = dict(ori_shape=(40, 45), img_shape=(40, 45), pad_shape=(40, 45),
                padding_size=[0, 0, 0, 0])
    with pytest.raises(ValueError, match='multiple of the patch'):
        model.encode_decode(inputs, [dict(meta)] * 2)  # what failed before
    with torch.no_grad():
        scores = model.inference(inputs, [dict(meta) for _ in range(2)])
        # independent reference: pad by hand with raw 0 normalised by the config's mean/std
        black = torch.tensor([-45.42 / 56.7, -59.82 / 69.03]).view(1, 2, 1, 1)
        padded = black.expand(2, 2, 48, 48).clone()
        padded[:, :, :40, :45] = inputs
        ref = model.encode_decode(padded, [dict(meta, img_shape=(48, 48))] * 2).sigmoid()
    assert scores.shape == (2, 4, 40, 45)
    assert torch.allclose(scores, ref[:, :, :40, :45], atol=1e-6)
