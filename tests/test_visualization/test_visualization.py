"""Multi-label visualizer, the two-light composite and the visualization hook."""
import itertools
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import HOOKS, VISUALIZERS
from mmseg.structures import SegDataSample

import aoissl_mm  # noqa: F401  (registers everything, applies compat)
from aoissl_mm.visualization import (
    MultiLabelSegLocalVisualizer,
    MultiLabelVisualizationHook,
    aoi_display_image,
)

RED, BLUE = [255, 0, 0], [0, 0, 255]
META = dict(classes=('wire', 'ball'), palette=[RED, BLUE])
_names = itertools.count()


def make_vis(**kwargs) -> MultiLabelSegLocalVisualizer:
    vis = VISUALIZERS.build(dict(type='MultiLabelSegLocalVisualizer',
                                 name=f'mlvis_test_{next(_names)}', **kwargs))
    vis.dataset_meta = dict(META)
    return vis


def two_class_map() -> torch.Tensor:
    """12 x 12: wire rows 2..9 x cols 1..7, ball rows 2..9 x cols 4..10 (overlap cols 4..7)."""
    m = torch.zeros((2, 12, 12), dtype=torch.uint8)
    m[0, 2:10, 1:8] = 1
    m[1, 2:10, 4:11] = 1
    return m


GREY = np.full((12, 12, 3), 100, dtype=np.uint8)


def draw(vis, sem_map):
    return vis._draw_sem_seg(GREY.copy(), PixelData(data=sem_map), META['classes'],
                             META['palette'])


def test_overlap_shows_both_colours_and_contours():
    vis = make_vis(alpha=0.5)
    both = draw(vis, two_class_map())
    only_wire = two_class_map()
    only_wire[1] = 0
    only_ball = two_class_map()
    only_ball[0] = 0
    wire_img, ball_img = draw(vis, only_wire), draw(vis, only_ball)
    # interior overlap pixel (5,5): 0.5 * grey + 0.5 * mean(red, blue)
    #                             = 0.5 * 100 + 0.5 * (127.5, 0, 127.5)
    assert both[5, 5].tolist() == [114, 50, 114]           # 113.75 -> 114
    assert wire_img[5, 5].tolist() == [178, 50, 50]        # 0.5*100 + 0.5*255 = 177.5 -> 178
    assert ball_img[5, 5].tolist() == [50, 50, 178]
    assert both[5, 5].tolist() != wire_img[5, 5].tolist()
    assert both[5, 5].tolist() != ball_img[5, 5].tolist()
    # wire-only interior keeps the single-class fill; uncovered stays grey
    assert both[5, 2].tolist() == [178, 50, 50]
    assert both[0, 0].tolist() == [100, 100, 100]
    # opaque contours in class colour: wire's corner, ball's right edge; inside the overlap
    # ball's left edge (col 4) and wire's right edge (col 7) both stay visible
    assert both[2, 1].tolist() == RED
    assert both[5, 10].tolist() == BLUE
    assert both[5, 4].tolist() == BLUE
    assert both[5, 7].tolist() == RED


def test_ignore_values_are_not_drawn_and_bad_channel_count_raises():
    vis = make_vis(alpha=0.5)
    m = torch.full((2, 12, 12), 255, dtype=torch.uint8)
    np.testing.assert_array_equal(draw(vis, m), GREY)
    with pytest.raises(ValueError, match=r'C = 2'):
        draw(vis, torch.zeros((3, 12, 12), dtype=torch.uint8))


def sample_with(gt: torch.Tensor, pred: torch.Tensor) -> SegDataSample:
    ds = SegDataSample()
    ds.gt_sem_seg = PixelData(data=gt)
    ds.pred_sem_seg = PixelData(data=pred)
    return ds


def test_add_datasample_gt_and_pred_side_by_side_with_legend():
    vis = make_vis(alpha=0.5)
    gt = two_class_map()
    pred = torch.zeros_like(gt)
    pred[0, 2:10, 1:8] = 1
    vis.add_datasample('x', GREY, sample_with(gt, pred), with_labels=False)
    out = vis.get_image()
    assert out.shape == (12, 24, 3)
    assert out[5, 5].tolist() == [114, 50, 114]            # gt panel: wire + ball
    assert out[5, 12 + 5].tolist() == [178, 50, 50]        # pred panel: wire only
    vis.add_datasample('x', GREY, sample_with(gt, pred), with_labels=True)
    labelled = vis.get_image()
    assert labelled.shape[1] == 24 and labelled.shape[0] > 12   # legend strip below
    np.testing.assert_array_equal(labelled[:12], out)
    legend = labelled[12:].reshape(-1, 3).tolist()
    assert RED in legend and BLUE in legend                  # colour swatches


def test_side_by_side_display_and_raw_pair_input(tmp_path):
    vis = make_vis(alpha=0.5, display='side_by_side', percentiles=(0, 100))
    pair = np.zeros((12, 12, 2), dtype=np.uint16)
    pair[:, 6:, 0] = 1000        # buffer0: right half bright
    pair[6:, :, 1] = 500         # buffer1: bottom half bright
    gt = two_class_map()
    out_file = str(tmp_path / 'drawn.png')
    vis.add_datasample('x', pair, sample_with(gt, gt), with_labels=False, out_file=out_file)
    out = vis.get_image()
    assert out.shape == (12, 48, 3)                          # buffer0 | buffer1 | gt | pred
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 11].tolist() == [255, 255, 255]
    assert out[0, 12].tolist() == [0, 0, 0] and out[11, 12].tolist() == [255, 255, 255]
    # composite under the overlays at uncovered (0, 11): R=255, G=0, B=mean 500/750 -> 170
    assert out[0, 24 + 11].tolist() == [255, 0, 170]
    written = cv2.cvtColor(cv2.imread(out_file), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(written, out)


def test_composite_of_known_pair():
    b0 = np.array([[0, 100], [300, 400]], dtype=np.uint16)
    b1 = np.array([[50, 50], [50, 200]], dtype=np.uint16)
    img = aoi_display_image(np.stack([b0, b1], -1), percentiles=(0, 100))
    # R = b0 / 400 * 255 = 0, 63.75, 191.25, 255; G = (b1 - 50) / 150 * 255 = 0, 0, 0, 255
    # B: mean 25, 75, 175, 300 -> (x - 25) / 275 * 255 = 0, 46.36, 139.09, 255
    assert img.dtype == np.uint8 and img.shape == (2, 2, 3)
    assert img[..., 0].tolist() == [[0, 64], [191, 255]]
    assert img[..., 1].tolist() == [[0, 0], [0, 255]]
    assert img[..., 2].tolist() == [[0, 46], [139, 255]]
    # default 1/99 percentiles of R values (0, 100, 300, 400): 3 and 397;
    # 100 -> (97 / 394) * 255 = 62.78 -> 63, 300 -> (297 / 394) * 255 = 192.22 -> 192,
    # 0 and 400 clip
    assert aoi_display_image(np.stack([b0, b1], -1))[..., 0].tolist() == [[0, 63], [192, 255]]
    # a flat 8-bit buffer keeps its value on the 0..255 scale
    flat = np.stack([np.full((3, 3), 77, np.uint8), np.full((3, 3), 128, np.uint8)], -1)
    assert aoi_display_image(flat)[0, 0].tolist() == [77, 128, 102]   # mean 102.5 -> 102
    with pytest.raises(ValueError, match='H x W x 2'):
        aoi_display_image(np.zeros((4, 4, 3), np.uint8))


def write_pair(folder, stem):
    """6 x 8 pair: buffer0 right half 200, buffer1 bottom half 100."""
    b0 = np.zeros((6, 8), np.uint8)
    b0[:, 4:] = 200
    b1 = np.zeros((6, 8), np.uint8)
    b1[3:] = 100
    p0, p1 = osp.join(folder, f'{stem}_buffer0.png'), osp.join(folder, f'{stem}_buffer1.png')
    cv2.imwrite(p0, b0)
    cv2.imwrite(p1, b1)
    return p0, p1


def packed_batch(p0, crop=None) -> dict:
    """A one-sample dataloader batch built by the real loading/packing transforms."""
    from aoissl_mm.datasets.transforms import LoadAOIImage, PackMultiLabelSegInputs, PadCenterCrop
    results = LoadAOIImage()(dict(img_path=p0))
    if crop is not None:
        results = PadCenterCrop(size=crop)(results)
    packed = PackMultiLabelSegInputs()(results)
    return dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']])


def output_for(p0, p1, stem='dev01') -> SegDataSample:
    ds = SegDataSample(metainfo=dict(img_path=p0, buffer_paths=(p0, p1), ori_shape=(6, 8),
                                     stem=stem))
    gt = torch.zeros((4, 6, 8), dtype=torch.uint8)
    gt[0, 1:5, 1:4] = 1
    ds.gt_sem_seg = PixelData(data=gt)
    ds.pred_sem_seg = PixelData(data=gt.clone())
    return ds


def test_hook_writes_composite_drawings_through_local_backend(tmp_path):
    # what tools/test.py --show-dir does: visualizer with save_dir + LocalVisBackend, draw=True
    save_dir = tmp_path / 'show'
    vis = VISUALIZERS.build(dict(type='MultiLabelSegLocalVisualizer', name='mlvis_hook_test',
                                 vis_backends=[dict(type='LocalVisBackend')],
                                 save_dir=str(save_dir)))
    hook = HOOKS.build(dict(type='MultiLabelVisualizationHook', draw=True, interval=2))
    assert isinstance(hook, MultiLabelVisualizationHook)
    p0, p1 = write_pair(str(tmp_path), 'dev01')
    batch = packed_batch(p0)     # the dataloader's batch: the hook draws its packed inputs
    runner = SimpleNamespace(iter=7)
    img_dir = save_dir / 'vis_data' / 'vis_image'

    hook.after_test_iter(runner, 0, batch, [output_for(p0, p1)])     # batch 1 of interval 2
    assert not img_dir.exists()
    hook.after_train_iter(runner, 1, batch, [output_for(p0, p1)])    # training: never drawn
    assert not img_dir.exists()
    hook.after_test_iter(runner, 1, batch, [output_for(p0, p1)])
    written = sorted(p.name for p in img_dir.iterdir())
    assert written == ['test_dev01_7.png']
    img = cv2.cvtColor(cv2.imread(str(img_dir / written[0])), cv2.COLOR_BGR2RGB)
    assert img.shape[1] == 16 and img.shape[0] > 6                # gt | pred, legend below
    # uncovered pixels show the composite: R = buffer0 (0/200 -> 0/255),
    # G = buffer1 (0/100 -> 0/255), B = mean (0, 50, 100, 150 -> 0, 85, 170, 255)
    assert img[0, 0].tolist() == [0, 0, 0]
    assert img[0, 7].tolist() == [255, 0, 170]
    assert img[5, 0].tolist() == [0, 255, 85]
    assert img[5, 7].tolist() == [255, 255, 255]
    assert img[5, 8 + 7].tolist() == [255, 255, 255]               # same in the pred panel
    assert img[1, 1].tolist() == [int(v) for v in vis.dataset_meta['palette'][0]]  # wire contour


def test_hook_draw_false_and_missing_inputs(tmp_path):
    VISUALIZERS.build(dict(type='MultiLabelSegLocalVisualizer', name='mlvis_hook_test2',
                           vis_backends=[dict(type='LocalVisBackend')],
                           save_dir=str(tmp_path / 'show')))
    p0, p1 = write_pair(str(tmp_path), 'dev02')
    off = MultiLabelVisualizationHook(draw=False, interval=1)
    off.after_val_iter(SimpleNamespace(iter=0), 0, packed_batch(p0), [output_for(p0, p1)])
    assert not (tmp_path / 'show' / 'vis_data' / 'vis_image').exists()
    hook = MultiLabelVisualizationHook(draw=True, interval=1)
    bare = SegDataSample(metainfo=dict(img_path=p0))
    with pytest.raises(KeyError, match=r'no packed "inputs" for sample .*dev02_buffer0\.png'):
        hook.after_val_iter(SimpleNamespace(iter=0), 0, {}, [bare])
    rgb = dict(inputs=[torch.zeros(3, 6, 8, dtype=torch.uint8)])
    with pytest.raises(ValueError, match=r'\(3, 6, 8\); expected \(2, H, W\)'):
        hook.after_val_iter(SimpleNamespace(iter=0), 0, rgb, [bare])


def test_hook_crops_the_pair_like_the_test_pipeline(tmp_path):
    save_dir = tmp_path / 'show'
    VISUALIZERS.build(dict(type='MultiLabelSegLocalVisualizer', name='mlvis_hook_test3',
                           vis_backends=[dict(type='LocalVisBackend')],
                           save_dir=str(save_dir)))
    hook = MultiLabelVisualizationHook(draw=True, interval=1)
    p0, p1 = write_pair(str(tmp_path), 'dev03')     # 6 x 8
    # the real test pipeline with PadCenterCrop(8 x 8): one zero row on top and bottom
    batch = packed_batch(p0, crop=(8, 8))
    ds = batch['data_samples'][0]
    assert ds.stem == 'dev03' and tuple(batch['inputs'][0].shape) == (2, 8, 8)
    ds.pred_sem_seg = PixelData(data=torch.zeros((4, 8, 8), dtype=torch.uint8))
    hook.after_test_iter(SimpleNamespace(iter=0), 0, batch, [ds])
    img = cv2.cvtColor(cv2.imread(str(save_dir / 'vis_data' / 'vis_image' / 'test_dev03_0.png')),
                       cv2.COLOR_BGR2RGB)
    assert img.shape[1] == 8
    # row 0 is padding (black); row 1 = original row 0: R 0/255 by column, G 0, B 0/170
    # (mean 0/100 on the 0, 50, 100, 150 scale); row 6 = original row 5: G 255, B 85/255
    assert img[0, 7].tolist() == [0, 0, 0]
    assert img[1, 7].tolist() == [255, 0, 170]
    assert img[7, 7].tolist() == [0, 0, 0]
    assert img[6, 0].tolist() == [0, 255, 85]
    assert img[6, 7].tolist() == [255, 255, 255]
