"""Whole / sliding-window inference and postprocessing shared by the multi-label segmentors."""
from typing import List, Tuple

import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from ..utils.multilabel_prediction import restore_geometry, threshold_scores


class MultiLabelPredictorMixin:
    """Per-class scores → multi-label masks, for any segmentor that scores a window.

    A segmentor using it provides :meth:`window_scores` (per-class scores in
    [0, 1] of one input window) and the attributes ``num_classes``,
    ``thresholds`` (one per class), ``test_cfg`` and ``align_corners``. The
    mixin gives it mmseg's ``inference`` (``'whole'`` or ``'slide'``) and
    ``postprocess_result`` (unpad, flip back, resize to ``ori_shape``, then
    :func:`~aoissl_mm.models.utils.threshold_scores`), so that
    ``MultiLabelIoUMetric``, the visualization hook, ``--out`` and the TTA
    model treat every multi-label segmentor alike. ``strict_threshold``
    selects ``score > threshold`` (retrieval, spec §8.2) instead of
    ``score >= threshold`` (sigmoid probabilities, spec §7.2).

    A window whose height or width is not a multiple of
    :attr:`window_divisor` (ViT: its patch) is padded bottom/right with
    black (raw 0 after the data preprocessor's normalisation, the value the
    black borders of AOI images have), scored, and cropped back, in whole
    and slide mode alike: the data preprocessor pads only training batches.
    """

    strict_threshold: bool = False

    def window_scores(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Per-class scores in [0, 1], float32 (N, C, H, W), of one input window."""
        raise NotImplementedError

    @property
    def window_divisor(self) -> int:
        """int: Window sides must be multiples of this: the backbone's ``patch_size``, else 1."""
        patch = getattr(getattr(self, 'backbone', None), 'patch_size', None)
        if isinstance(patch, (tuple, list)):
            patch = max(patch)
        return int(patch) if isinstance(patch, int) and patch > 0 else 1

    def black_value(self, inputs: Tensor) -> Tensor:
        """What raw 0 (a black pixel) becomes after the data preprocessor, (1, C, 1, 1)."""
        pre = getattr(self, 'data_preprocessor', None)
        channels = inputs.shape[1]
        if getattr(pre, '_enable_normalize', False):
            mean = pre.mean.to(inputs).view(1, -1, 1, 1)
            std = pre.std.to(inputs).view(1, -1, 1, 1)
            return (-mean / std)[:, :channels]
        return inputs.new_zeros(1, channels, 1, 1)

    def pad_to_multiple(self, inputs: Tensor, divisor: int) -> Tensor:
        """Pad ``inputs`` (N, C, H, W) bottom/right with black to multiples of ``divisor``."""
        height, width = inputs.shape[-2:]
        pad_h, pad_w = (-height) % divisor, (-width) % divisor
        if not (pad_h or pad_w):
            return inputs
        out = self.black_value(inputs).expand(inputs.shape[0], -1, height + pad_h,
                                              width + pad_w).clone()
        out[:, :, :height, :width] = inputs
        return out

    def divisible_window_scores(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """:meth:`window_scores` of ``inputs`` padded to :attr:`window_divisor`, cropped back."""
        height, width = inputs.shape[-2:]
        padded = self.pad_to_multiple(inputs, self.window_divisor)
        if padded is inputs:
            return self.window_scores(inputs, batch_img_metas)
        metas = [dict(meta, img_shape=tuple(padded.shape[2:])) for meta in batch_img_metas]
        return self.window_scores(padded, metas)[:, :, :height, :width]

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Per-class scores with ``'whole'`` or ``'slide'`` inference.

        Args:
            inputs (Tensor): Normalised images (N, C_in, H, W).
            batch_img_metas (list[dict]): Image metas.

        Returns:
            Tensor: float32 scores (N, C, H, W).

        Raises:
            ValueError: ``test_cfg.mode`` is neither ``'whole'`` nor ``'slide'``.
        """
        mode = self.test_cfg.get('mode', 'whole')
        if mode == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        if mode == 'whole':
            return self.divisible_window_scores(inputs, batch_img_metas)
        raise ValueError(f"test_cfg.mode must be 'whole' or 'slide', got {mode!r}")

    def _slide_grid(self) -> Tuple[Tuple[int, int], Tuple[int, int]]:
        for key in ('crop_size', 'stride'):
            if key not in self.test_cfg:
                raise ValueError(f"test_cfg.mode='slide' needs test_cfg.{key} (h, w), got "
                                 f'{dict(self.test_cfg)}')
        return tuple(self.test_cfg['stride']), tuple(self.test_cfg['crop_size'])

    def slide_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Sliding-window inference averaging scores over overlaps.

        The window grid is mmseg's (the last window of a row/column is moved
        back inside the image; windows larger than the image shrink to it).

        Args:
            inputs (Tensor): Normalised images (N, C_in, H, W).
            batch_img_metas (list[dict]): Image metas; ``img_shape`` of the
                first one is set to each window's shape (mmseg convention, so
                a head resizes window logits to the window).

        Returns:
            Tensor: float32 scores (N, C, H, W): the mean over windows of
            :meth:`window_scores`.
        """
        (h_stride, w_stride), (h_crop, w_crop) = self._slide_grid()
        batch_size, _, h_img, w_img = inputs.shape
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        score_sum = inputs.new_zeros((batch_size, self.num_classes, h_img, w_img),
                                     dtype=torch.float32)
        count = inputs.new_zeros((batch_size, 1, h_img, w_img), dtype=torch.float32)
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y2 = min(h_idx * h_stride + h_crop, h_img)
                x2 = min(w_idx * w_stride + w_crop, w_img)
                y1 = max(y2 - h_crop, 0)
                x1 = max(x2 - w_crop, 0)
                crop = inputs[:, :, y1:y2, x1:x2]
                batch_img_metas[0]['img_shape'] = crop.shape[2:]
                score_sum[:, :, y1:y2, x1:x2] += self.divisible_window_scores(
                    crop, batch_img_metas)
                count[:, :, y1:y2, x1:x2] += 1
        if bool((count == 0).any()):
            raise RuntimeError('slide_inference left pixels uncovered; check test_cfg.stride '
                               f"{self.test_cfg['stride']} and crop_size "
                               f"{self.test_cfg['crop_size']}")
        return score_sum / count

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """Restore geometry, then apply the per-class thresholds.

        Args:
            seg_logits (Tensor): Scores (N, C, H, W) from :meth:`inference`
                (mmseg's argument name is kept).
            data_samples (list[SegDataSample] | None): Samples with metainfo
                (``padding_size``/``img_padding_size``, ``flip``,
                ``flip_direction``, ``ori_shape``). None: no geometry is
                restored and new samples are created.

        Returns:
            list[SegDataSample]: Samples with ``seg_logits`` (float scores,
            (C, H, W)) and ``pred_sem_seg`` (uint8 {0, 1} (C, H, W)).
        """
        batch_size, num_channels = seg_logits.shape[:2]
        if num_channels != self.num_classes:
            raise ValueError(f"'seg_logits' must have num_classes={self.num_classes} channels, "
                             f'got shape {tuple(seg_logits.shape)}')
        only_prediction = data_samples is None
        if only_prediction:
            data_samples = [SegDataSample() for _ in range(batch_size)]
        for i in range(batch_size):
            scores = seg_logits[i].float()
            if not only_prediction:
                scores = restore_geometry(scores, data_samples[i].metainfo, self.align_corners)
            data_samples[i].set_data({
                'seg_logits': PixelData(data=scores),
                'pred_sem_seg': PixelData(
                    data=threshold_scores(scores, self.thresholds, strict=self.strict_threshold))
            })
        return data_samples
