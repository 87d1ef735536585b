"""The one threshold rule: >= for the fine-tuned segmentor, strict > for retrieval."""
import pytest
import torch

from aoissl_mm.models.utils import check_thresholds, restore_geometry, threshold_scores


def test_threshold_rule_inclusive_and_strict():
    # one pixel per class, scores exactly at, above and below the thresholds
    scores = torch.tensor([0.5, 0.3, 0.29, 0.9]).view(4, 1, 1)
    thr = (0.5, 0.3, 0.3, 0.95)
    assert threshold_scores(scores, thr).flatten().tolist() == [1, 1, 0, 0]
    assert threshold_scores(scores, thr, strict=True).flatten().tolist() == [0, 0, 0, 0]
    batch = threshold_scores(scores[None].repeat(2, 1, 3, 2), thr)
    assert batch.shape == (2, 4, 3, 2) and batch.dtype == torch.uint8
    assert batch[1, :, 2, 1].tolist() == [1, 1, 0, 0]
    with pytest.raises(ValueError, match=r'C = 3.*\(4, 1, 1\)'):
        threshold_scores(scores, thr[:3])


def test_check_thresholds():
    assert check_thresholds(0.4, 3) == (0.4, 0.4, 0.4)
    assert check_thresholds([0.1, 0.9], 2) == (0.1, 0.9)
    with pytest.raises(ValueError, match="'thr' must be a float or a list of 3"):
        check_thresholds([0.5, 0.5], 3, name='thr')
    with pytest.raises(ValueError, match=r'\(0, 1\)'):
        check_thresholds(1.0, 2)
    with pytest.raises(ValueError, match='numbers'):
        check_thresholds([0.5, True], 2)


def test_restore_geometry_unpads_flips_and_resizes():
    scores = torch.arange(12, dtype=torch.float32).view(1, 3, 4)
    # padding (left, right, top, bottom) = (0, 1, 0, 1): keep rows 0-1, columns 0-2
    out = restore_geometry(scores, dict(padding_size=[0, 1, 0, 1], flip=True,
                                        flip_direction='vertical', ori_shape=(2, 3)))
    assert out.tolist() == [[[4.0, 5.0, 6.0], [0.0, 1.0, 2.0]]]
    # 2x nearest-free upsampling of a constant stays constant
    up = restore_geometry(torch.full((2, 2, 2), 0.25), dict(ori_shape=(4, 4)))
    assert up.shape == (2, 4, 4) and torch.allclose(up, torch.full((2, 4, 4), 0.25))
