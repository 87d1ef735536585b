"""Encoder-decoder segmentor with sigmoid multi-label outputs."""
from numbers import Real
from typing import List, Sequence, Tuple, Union

import torch
from mmengine.structures import PixelData
from torch import Tensor

from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList


@MODELS.register_module()
class MultiLabelEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` whose classes overlap (one sigmoid per class).

    Prediction (:meth:`postprocess_result`): for each image the logits are
    unpadded, flipped back and bilinearly resized to ``ori_shape`` exactly as
    in mmseg; then ``seg_logits`` holds the sigmoid PROBABILITIES (C, H, W)
    and ``pred_sem_seg`` the uint8 (C, H, W) mask ``prob_c >= threshold_c``
    (threshold on probabilities, AOI-SSL spec §7.2; the reference code's
    ``logits > 0.5`` is a bug).

    Sliding-window inference (``test_cfg.mode='slide'``): overlapping windows
    are merged by averaging sigmoid PROBABILITIES (mmseg averages logits).
    To keep the rest of the pipeline unchanged, :meth:`slide_inference`
    returns ``logit(clamp(mean_prob, PROB_EPS, 1 - PROB_EPS))`` in float32, so
    ``sigmoid`` in :meth:`postprocess_result` recovers the averaged
    probability (up to the clamp). ``'whole'`` mode is inherited unchanged.

    Args:
        threshold (float | Sequence[float]): Probability threshold, one for
            all classes or one per class; each strictly inside (0, 1).
            Defaults to 0.5.
        **kwargs: ``EncoderDecoder`` arguments (``backbone``, ``decode_head``,
            ``neck``, ``auxiliary_head``, ``train_cfg``, ``test_cfg``,
            ``data_preprocessor``, ``pretrained``, ``init_cfg``).
    """

    #: Clamp applied before turning averaged probabilities back into logits.
    PROB_EPS: float = 1e-6

    def __init__(self, threshold: Union[float, Sequence[float]] = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.out_channels != self.num_classes:
            raise ValueError(f"decode_head 'out_channels' ({self.out_channels}) must equal "
                             f"'num_classes' ({self.num_classes}) for multi-label segmentation")
        self.thresholds = self._check_threshold(threshold, self.num_classes)

    @staticmethod
    def _check_threshold(threshold: Union[float, Sequence[float]],
                         num_classes: int) -> Tuple[float, ...]:
        """Validate ``threshold`` and expand it to one value per class.

        Args:
            threshold (float | Sequence[float]): Scalar or per-class values.
            num_classes (int): Number of classes of the decode head.

        Returns:
            tuple[float]: ``num_classes`` thresholds.
        """
        if isinstance(threshold, Real) and not isinstance(threshold, bool):
            values = [float(threshold)] * num_classes
        elif isinstance(threshold, (list, tuple)):
            if len(threshold) != num_classes:
                raise ValueError(f"'threshold' must be a float or a list of {num_classes} floats "
                                 f'(one per class, num_classes={num_classes}), got '
                                 f'{len(threshold)} values: {list(threshold)}')
            if not all(isinstance(t, Real) and not isinstance(t, bool) for t in threshold):
                raise ValueError(f"'threshold' values must be numbers, got {list(threshold)}")
            values = [float(t) for t in threshold]
        else:
            raise ValueError(f"'threshold' must be a float or a list of {num_classes} floats, "
                             f'got {threshold!r}')
        for value in values:
            if not 0.0 < value < 1.0:
                raise ValueError(f"'threshold' values are probabilities and must lie strictly "
                                 f'inside (0, 1), got {values}')
        return tuple(values)

    def check_dataset_meta(self, classes: Sequence[str]) -> None:
        """Check that the dataset's classes match the decode head.

        Args:
            classes (Sequence[str]): ``dataset.metainfo['classes']``.

        Raises:
            ValueError: When the number of classes differs from the head's
                ``num_classes``, or when the head's ``class_names`` (if set)
                differ from ``classes``.
        """
        classes = tuple(classes)
        if len(classes) != self.num_classes:
            raise ValueError(f'dataset has {len(classes)} classes {list(classes)} but '
                             f'decode_head.num_classes is {self.num_classes}')
        head_names = getattr(self.decode_head, 'class_names', None)
        if head_names is not None and not all(
                n == f'c{i}' for i, n in enumerate(head_names)) and tuple(head_names) != classes:
            raise ValueError(f'dataset classes {list(classes)} differ from '
                             f'decode_head.class_names {list(head_names)}')

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
            Tensor: float32 logits (N, C, H, W) equal to
            ``logit(clamp(mean over windows of sigmoid(window logits)))``.
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
        return torch.logit(prob_sum / count, eps=self.PROB_EPS)

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """Restore geometry, then sigmoid and per-class thresholds.

        Args:
            seg_logits (Tensor): Logits (N, C, H, W) from :meth:`inference`.
            data_samples (list[SegDataSample] | None): Samples with metainfo
                (``padding_size``/``img_padding_size``, ``flip``,
                ``flip_direction``, ``ori_shape``). None: no geometry is
                restored and new samples are created.

        Returns:
            list[SegDataSample]: Samples with ``seg_logits`` (float
            probabilities, (C, H, W)) and ``pred_sem_seg`` (uint8 {0, 1},
            (C, H, W)).
        """
        batch_size, num_channels, height, width = seg_logits.shape
        if num_channels != self.num_classes:
            raise ValueError(f"'seg_logits' must have num_classes={self.num_classes} channels, "
                             f'got shape {tuple(seg_logits.shape)}')
        only_prediction = data_samples is None
        if only_prediction:
            data_samples = [SegDataSample() for _ in range(batch_size)]
        thresholds = seg_logits.new_tensor(self.thresholds, dtype=torch.float32).view(-1, 1, 1)
        for i in range(batch_size):
            if only_prediction:
                i_logits = seg_logits[i]
            else:
                img_meta = data_samples[i].metainfo
                if 'img_padding_size' in img_meta:
                    padding_size = img_meta['img_padding_size']
                else:
                    padding_size = img_meta.get('padding_size', [0, 0, 0, 0])
                pad_left, pad_right, pad_top, pad_bottom = padding_size
                i_logits = seg_logits[i:i + 1, :, pad_top:height - pad_bottom,
                                      pad_left:width - pad_right]
                if img_meta.get('flip', False):
                    direction = img_meta.get('flip_direction')
                    if direction == 'horizontal':
                        i_logits = i_logits.flip(dims=(3, ))
                    elif direction == 'vertical':
                        i_logits = i_logits.flip(dims=(2, ))
                    else:
                        raise ValueError(f"'flip_direction' must be 'horizontal' or 'vertical' "
                                         f'when flip is set, got {direction!r}')
                i_logits = resize(
                    i_logits,
                    size=img_meta['ori_shape'],
                    mode='bilinear',
                    align_corners=self.align_corners,
                    warning=False).squeeze(0)
            probs = i_logits.float().sigmoid()
            pred = (probs >= thresholds).to(torch.uint8)
            data_samples[i].set_data({
                'seg_logits': PixelData(data=probs),
                'pred_sem_seg': PixelData(data=pred)
            })
        return data_samples
