"""MultiLabelIoUMetric against hand-computed TP/FP/FN of overlapping masks."""
import math
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

import aoissl_mm  # noqa: F401  (registers everything, applies compat)
from aoissl_mm.datasets.io import read_multilabel_mask
from aoissl_mm.evaluation import MultiLabelIoUMetric

CLASSES = ('wire', 'ball', 'wedge', 'epoxy')
H = W = 4
Pixels = Sequence[Tuple[int, int]]


def chw(spec: Dict[int, Pixels], ignore: Dict[int, Pixels] = None) -> torch.Tensor:
    """(4, 4, 4) uint8 map with the listed (row, col) pixels set per class."""
    out = torch.zeros((len(CLASSES), H, W), dtype=torch.uint8)
    for c, pixels in spec.items():
        for r, k in pixels:
            out[c, r, k] = 1
    for c, pixels in (ignore or {}).items():
        for r, k in pixels:
            out[c, r, k] = 255
    return out


def sample(pred: torch.Tensor, gt: torch.Tensor, name: str = 'dev_buffer0.png',
           stem: str = 'dev') -> dict:
    return dict(pred_sem_seg=dict(data=pred), gt_sem_seg=dict(data=gt), img_path=name, stem=stem)


ROW1 = [(1, 0), (1, 1), (1, 2), (1, 3)]
COL0 = [(0, 0), (1, 0), (2, 0), (3, 0)]

# Image 1 ---------------------------------------------------------------
# wire  gt  : row 1                               (4 px)
#       pred: (1,0) (1,1) (1,2) (2,0) (3,3)
#       TP = 3 [(1,0) (1,1) (1,2)], FP = 2 [(2,0) (3,3)], FN = 1 [(1,3)]
# ball  gt  : (0,1) (0,2) (1,1) (1,2)  -> overlaps wire at (1,1) (1,2); gt (3,3) = 255
#       pred: (0,1) (1,1) (1,2) (2,2) (3,3)
#       TP = 3, FP = 1 [(2,2); (3,3) is ignored for ball only], FN = 1 [(0,2)]
# wedge gt  : none, pred (3,0)   -> FP = 1
# epoxy     : nothing
GT1 = chw({0: ROW1, 1: [(0, 1), (0, 2), (1, 1), (1, 2)]}, ignore={1: [(3, 3)]})
PRED1 = chw({0: [(1, 0), (1, 1), (1, 2), (2, 0), (3, 3)],
             1: [(0, 1), (1, 1), (1, 2), (2, 2), (3, 3)],
             2: [(3, 0)]})
# Image 2 ---------------------------------------------------------------
# wire  gt  : column 0, gt (3,3) = 255; pred: column 0 + (3,3)   -> TP = 4 (3,3 ignored)
# ball  gt  : (0,0) (0,1) (overlaps wire at (0,0)); pred: (0,0)   -> TP = 1, FN = 1
# wedge gt  : none, pred (2,2) (2,3)   -> FP = 2
# epoxy     : nothing
GT2 = chw({0: COL0, 1: [(0, 0), (0, 1)]}, ignore={0: [(3, 3)]})
PRED2 = chw({0: COL0 + [(3, 3)], 1: [(0, 0)], 2: [(2, 2), (2, 3)]})
# Totals over the split:
# wire : TP 7, FP 2, FN 1 -> IoU 7/10, Dice 14/17, P 7/9, R 7/8
# ball : TP 4, FP 1, FN 2 -> IoU 4/7,  Dice 8/11,  P 4/5, R 4/6
# wedge: TP 0, FP 3, FN 0 -> IoU 0, Dice 0, P 0, R 0/0 = NaN   (only predicted: counts)
# epoxy: 0/0 everywhere  -> NaN, left out of every mean
EXPECTED = {
    'wire': dict(IoU=7 / 10, Dice=14 / 17, Precision=7 / 9, Recall=7 / 8),
    'ball': dict(IoU=4 / 7, Dice=8 / 11, Precision=4 / 5, Recall=4 / 6),
    'wedge': dict(IoU=0.0, Dice=0.0, Precision=0.0, Recall=math.nan),
    'epoxy': dict(IoU=math.nan, Dice=math.nan, Precision=math.nan, Recall=math.nan),
}


def make_metric(**kwargs) -> MultiLabelIoUMetric:
    metric = METRICS.build(dict(type='MultiLabelIoUMetric', **kwargs))
    metric.dataset_meta = dict(classes=CLASSES)
    return metric


def run(metric: MultiLabelIoUMetric, batches: List[List[dict]]) -> dict:
    for batch in batches:
        metric.process({}, batch)
    return metric.evaluate(sum(len(b) for b in batches))


def close(value: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(value)
    return abs(value - round(expected * 100, 2)) < 1e-6


def test_dataset_level_scores_with_overlaps_absent_and_pred_only_classes():
    res = run(make_metric(), [[sample(PRED1, GT1)], [sample(PRED2, GT2)]])
    for name, scores in EXPECTED.items():
        for score, expected in scores.items():
            assert close(res[f'IoU.{name}' if score == 'IoU' else f'{score}.{name}'], expected), \
                (name, score, res)
    # means over wire, ball, wedge (epoxy NaN excluded); recall also drops wedge (0/0)
    assert close(res['mIoU'], (7 / 10 + 4 / 7 + 0) / 3)          # 42.38
    assert close(res['mDice'], (14 / 17 + 8 / 11 + 0) / 3)       # 51.69
    assert close(res['mPrecision'], (7 / 9 + 4 / 5 + 0) / 3)     # 52.59
    assert close(res['mRecall'], (7 / 8 + 4 / 6) / 2)            # 77.08
    assert close(res['mFscore'], (14 / 17 + 8 / 11) / 2)         # F1 of wedge is NaN
    assert close(res['aAcc'], (7 + 4) / (8 + 6))                 # pixel-label recall
    assert 'mIoU_per_batch' not in res


def test_same_result_from_one_batch_and_from_to_dict_samples():
    def as_dict(pred, gt):
        ds = SegDataSample(metainfo=dict(img_path='a_buffer0.png'))
        ds.pred_sem_seg = PixelData(data=pred.bool())
        ds.gt_sem_seg = PixelData(data=gt.long())
        return ds.to_dict()

    res = run(make_metric(iou_metrics='mIoU'), [[as_dict(PRED1, GT1), as_dict(PRED2, GT2)]])
    assert close(res['mIoU'], (7 / 10 + 4 / 7 + 0) / 3)
    assert close(res['IoU.ball'], 4 / 7)
    assert 'mDice' not in res


def test_nan_to_num_counts_absent_class():
    res = run(make_metric(nan_to_num=0), [[sample(PRED1, GT1), sample(PRED2, GT2)]])
    assert close(res['mIoU'], (7 / 10 + 4 / 7 + 0 + 0) / 4)


# Image 3 (second batch): wire gt (0,0) (0,1), pred (0,0) -> IoU 1/2;
#   ball has no gt but a false positive (3,3) -> skipped in this batch; wedge/epoxy skipped.
GT3 = chw({0: [(0, 0), (0, 1)]})
PRED3 = chw({0: [(0, 0)], 1: [(3, 3)]})
# Image 4 (third batch): no gt of any class, a wedge false positive -> every class skipped,
#   so the batch has no value and does not enter the weighted mean.
GT4 = chw({})
PRED4 = chw({2: [(1, 1)]})


def test_per_batch_average_skips_classes_without_gt():
    res = run(make_metric(per_batch=True),
              [[sample(PRED1, GT1), sample(PRED2, GT2)], [sample(PRED3, GT3)],
               [sample(PRED4, GT4)]])
    # batch A (2 images): wire 7/10, ball 4/7, wedge/epoxy skipped -> (0.7 + 4/7) / 2
    # batch B (1 image) : wire 1/2, ball skipped despite its FP -> 0.5
    # batch C           : no class has gt -> no value
    batch_a = (0.7 + 4 / 7) / 2
    expected = (2 * batch_a + 1 * 0.5) / 3                      # 59.05
    assert close(res['mIoU_per_batch'], expected)
    # dataset level over all four images: wire TP 8 FP 2 FN 2; ball TP 4 FP 2 FN 2;
    # wedge TP 0 FP 4 -> mIoU = (8/12 + 4/8 + 0) / 3
    assert close(res['mIoU'], (8 / 12 + 4 / 8 + 0) / 3)


def test_ignore_index_is_element_wise():
    # gt all 255 for wire except (0,0) = 1; pred wire everywhere -> TP 1, nothing else counts
    gt = chw({0: [(0, 0)]})
    gt[0][gt[0] == 0] = 255
    gt[0, 0, 0] = 1
    pred = chw({0: [(r, k) for r in range(H) for k in range(W)]})
    # ball: pred at (2,2) with gt 0 there -> FP for ball (not ignored: other channel)
    pred[1, 2, 2] = 1
    gt[1, 0, 1] = 1   # ball gt -> FN
    res = run(make_metric(), [[sample(pred, gt)]])
    assert close(res['IoU.wire'], 1.0)
    assert close(res['IoU.ball'], 0.0)
    assert close(res['Precision.ball'], 0.0)


def test_output_dir_writes_bitmask_pngs(tmp_path):
    out = tmp_path / 'preds'
    metric = make_metric(output_dir=str(out), keep_results=True)
    # the file is named after the sample's stem metainfo (set by the dataset), not the path
    run(metric, [[sample(PRED1, GT1, 'root/images/dev01_buffer0.png', stem='dev01'),
                  sample(PRED2, GT2, 'root/images/other_buffer_0.tif', stem='dev02')]])
    for stem, pred in (('dev01', PRED1), ('dev02', PRED2)):
        path = osp.join(str(out), f'{stem}.png')
        mask = read_multilabel_mask(path, len(CLASSES))
        np.testing.assert_array_equal(mask, pred.numpy().transpose(1, 2, 0))
    # bit c <=> class c: (1,1) of image 1 is wire + ball -> 0b011 = 3
    import cv2
    raw = cv2.imread(osp.join(str(out), 'dev01.png'), cv2.IMREAD_UNCHANGED)
    assert raw[1, 1] == 3 and raw[3, 0] == 4 and raw[3, 3] == 3


def test_format_only_writes_without_gt(tmp_path):
    metric = make_metric(output_dir=str(tmp_path), format_only=True)
    metric.process({}, [dict(pred_sem_seg=dict(data=PRED2), img_path='x/dev9_buffer0.png',
                             stem='dev9')])
    assert metric.evaluate(1) == {}
    with pytest.raises(KeyError, match=r'x/a_buffer0\.png has no "stem"'):
        metric.process({}, [dict(pred_sem_seg=dict(data=PRED2), img_path='x/a_buffer0.png')])
    mask = read_multilabel_mask(str(tmp_path / 'dev9.png'), len(CLASSES))
    np.testing.assert_array_equal(mask, PRED2.numpy().transpose(1, 2, 0))


def test_format_only_needs_output_dir():
    with pytest.raises(ValueError, match='output_dir'):
        MultiLabelIoUMetric(format_only=True)


def test_channel_count_mismatch_names_both_numbers():
    metric = make_metric()
    with pytest.raises(ValueError, match=r'3 channels.*4 classes'):
        metric.process({}, [sample(PRED1[:3], GT1)])
    with pytest.raises(ValueError, match=r'gt_sem_seg.*5 channels.*4 classes'):
        metric.process({}, [sample(PRED1, torch.cat([GT1, GT1[:1]]))])


def test_single_label_map_and_non_binary_pred_are_rejected():
    metric = make_metric()
    with pytest.raises(ValueError, match=r'\(C, H, W\)'):
        metric.process({}, [sample(PRED1[0], GT1)])
    bad = PRED1.clone()
    bad[0, 0, 0] = 2
    with pytest.raises(ValueError, match='other than 0/1'):
        metric.process({}, [sample(bad, GT1)])
