"""Encoder-decoder segmentor with sigmoid multi-label outputs."""
from typing import List, Sequence, Tuple, Union

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor, nn

from ..utils.multilabel_prediction import check_thresholds, restore_geometry, threshold_scores


@MODELS.register_module()
class MultiLabelEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` whose classes overlap (one sigmoid per class).

    Prediction: :meth:`inference` returns per-class sigmoid PROBABILITIES
    (N, C, H, W) in float32 — ``sigmoid(logits)`` for ``test_cfg.mode='whole'``,
    and for ``'slide'`` the probabilities averaged over overlapping windows
    (mmseg averages logits). :meth:`postprocess_result` then unpads, flips
    back and bilinearly resizes them to ``ori_shape`` as mmseg does, and
    thresholds them with the package's one rule,
    :func:`~aoissl_mm.models.utils.threshold_scores` (``prob_c >=
    threshold_c``, AOI-SSL spec §7.2; the reference code's ``logits > 0.5`` is
    a bug). ``seg_logits`` holds the probabilities (C, H, W), ``pred_sem_seg``
    the uint8 (C, H, W) mask. The thresholds are also handed to the decode
    (and auxiliary) heads, so the per-class training accuracy they log uses
    them too.

    Args:
        threshold (float | Sequence[float]): Probability threshold, one for
            all classes or one per class; each strictly inside (0, 1).
            Defaults to 0.5.
        **kwargs: ``EncoderDecoder`` arguments (``backbone``, ``decode_head``,
            ``neck``, ``auxiliary_head``, ``train_cfg``, ``test_cfg``,
            ``data_preprocessor``, ``pretrained``, ``init_cfg``).
    """

    def __init__(self, threshold: Union[float, Sequence[float]] = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.thresholds = check_thresholds(threshold, self.num_classes)
        heads = [('decode_head', self.decode_head)]
        if self.with_auxiliary_head:
            aux = self.auxiliary_head
            heads += [('auxiliary_head', h) for h in
                      (aux if isinstance(aux, nn.ModuleList) else [aux])]
        for key, head in heads:
            # multi-label heads check out_channels == num_classes themselves
            if not hasattr(head, 'set_thresholds'):
                raise TypeError(f'{key} must be a multi-label head (built on '
                                f'MultiLabelHeadMixin, e.g. MultiLabelUPerHead), got '
                                f'{type(head).__name__}')
            head.set_thresholds(self.thresholds)

    def get_layer_depth(self, param_name: str) -> Tuple[int, int]:
        """Layer depth for layer-wise LR decay (called on the whole model).

        Delegates to ``self.backbone.get_layer_depth(param_name,
        prefix='backbone.')``; names outside the backbone (decode head,
        neck) get the last depth ``num_layers - 1``.

        Args:
            param_name (str): Parameter name relative to this segmentor.

        Returns:
            tuple[int, int]: ``(layer_depth, num_layers)``.
        """
        backbone_fn = getattr(self.backbone, 'get_layer_depth', None)
        if backbone_fn is None:
            raise NotImplementedError(
                f'backbone {type(self.backbone).__name__} does not implement '
                'get_layer_depth(param_name, prefix), needed for layer-wise LR decay')
        return backbone_fn(param_name, prefix='backbone.')

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Per-class probabilities with ``'whole'`` or ``'slide'`` inference.

        Args:
            inputs (Tensor): Normalised images (N, C_in, H, W).
            batch_img_metas (list[dict]): Image metas.

        Returns:
            Tensor: float32 probabilities (N, C, H, W).

        Raises:
            ValueError: ``test_cfg.mode`` is neither ``'whole'`` nor ``'slide'``.
        """
        mode = self.test_cfg.get('mode', 'whole')
        if mode == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        if mode == 'whole':
            return self.whole_inference(inputs, batch_img_metas).float().sigmoid()
        raise ValueError(f"test_cfg.mode must be 'whole' or 'slide', got {mode!r}")

    def slide_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Sliding-window inference averaging probabilities over overlaps.

        The window grid is mmseg's (the last window of a row/column is moved
        back inside the image; windows larger than the image shrink to it).

        Args:
            inputs (Tensor): Normalised images (N, C_in, H, W).
            batch_img_metas (list[dict]): Image metas; ``img_shape`` of the
                first one is set to each window's shape (mmseg convention, so
                the head resizes window logits to the window).

        Returns:
            Tensor: float32 probabilities (N, C, H, W): the mean over windows
            of ``sigmoid(window logits)``.
        """
        for key in ('crop_size', 'stride'):
            if key not in self.test_cfg:
                raise ValueError(f"test_cfg.mode='slide' needs test_cfg.{key} (h, w), got "
                                 f'{dict(self.test_cfg)}')
        h_stride, w_stride = self.test_cfg['stride']
        h_crop, w_crop = self.test_cfg['crop_size']
        batch_size, _, h_img, w_img = inputs.shape
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        prob_sum = inputs.new_zeros((batch_size, self.out_channels, h_img, w_img),
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
                crop_logits = self.encode_decode(crop, batch_img_metas)
                prob_sum[:, :, y1:y2, x1:x2] += crop_logits.float().sigmoid()
                count[:, :, y1:y2, x1:x2] += 1
        if bool((count == 0).any()):
            raise RuntimeError('slide_inference left pixels uncovered; check test_cfg.stride '
                               f"{self.test_cfg['stride']} and crop_size "
                               f"{self.test_cfg['crop_size']}")
        return prob_sum / count

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """Restore geometry, then apply the per-class thresholds.

        Args:
            seg_logits (Tensor): Probabilities (N, C, H, W) from
                :meth:`inference` (mmseg's argument name is kept).
            data_samples (list[SegDataSample] | None): Samples with metainfo
                (``padding_size``/``img_padding_size``, ``flip``,
                ``flip_direction``, ``ori_shape``). None: no geometry is
                restored and new samples are created.

        Returns:
            list[SegDataSample]: Samples with ``seg_logits`` (float
            probabilities, (C, H, W)) and ``pred_sem_seg`` (uint8 {0, 1},
            (C, H, W), ``prob >= threshold``).
        """
        batch_size, num_channels = seg_logits.shape[:2]
        if num_channels != self.num_classes:
            raise ValueError(f"'seg_logits' must have num_classes={self.num_classes} channels, "
                             f'got shape {tuple(seg_logits.shape)}')
        only_prediction = data_samples is None
        if only_prediction:
            data_samples = [SegDataSample() for _ in range(batch_size)]
        for i in range(batch_size):
            probs = seg_logits[i].float()
            if not only_prediction:
                probs = restore_geometry(probs, data_samples[i].metainfo, self.align_corners)
            data_samples[i].set_data({
                'seg_logits': PixelData(data=probs),
                'pred_sem_seg': PixelData(data=threshold_scores(probs, self.thresholds))
            })
        return data_samples
