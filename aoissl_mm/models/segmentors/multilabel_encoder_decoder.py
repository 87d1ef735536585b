"""Encoder-decoder segmentor with sigmoid multi-label outputs."""
from typing import List, Sequence, Tuple, Union

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from torch import Tensor, nn

from ..utils.multilabel_prediction import check_thresholds
from .multilabel_predictor_mixin import MultiLabelPredictorMixin


@MODELS.register_module()
class MultiLabelEncoderDecoder(MultiLabelPredictorMixin, EncoderDecoder):
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

    def window_scores(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Sigmoid probabilities, float32 (N, C, H, W), of one input window.

        Args:
            inputs (Tensor): Normalised images (N, C_in, H, W).
            batch_img_metas (list[dict]): Image metas.

        Returns:
            Tensor: ``sigmoid(encode_decode(inputs))``.
        """
        return self.encode_decode(inputs, batch_img_metas).float().sigmoid()
