"""Test-time augmentation for multi-label segmentors: average probabilities."""
from typing import List

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS
from mmseg.utils import SampleList

from ..utils.multilabel_prediction import threshold_scores


@MODELS.register_module()
class MultiLabelSegTTAModel(SegTTAModel):
    """mmseg's ``SegTTAModel`` for :class:`MultiLabelEncoderDecoder`.

    mmseg merges augmented predictions with a softmax + argmax (one class per
    pixel). Here each augmented view's ``seg_logits`` already holds per-class
    sigmoid probabilities, flipped back by the segmentor; they are averaged
    and thresholded with the segmentor's per-class ``thresholds`` (and its
    ``strict_threshold`` rule: ``>`` for retrieval, ``>=`` otherwise). The ground
    truth and metainfo of the first view are kept, so the first transform of
    the TTA pipeline should be the identity (e.g. ``RandomFlip(prob=0.)``).
    """

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Average the probabilities of all views of each image and threshold them.

        Args:
            data_samples_list (List[SampleList]): For every image, the
                predictions of all its augmented views.

        Returns:
            SampleList: One merged prediction per image.
        """
        thresholds = getattr(self.module, 'thresholds', None)
        if thresholds is None:
            raise TypeError(f'MultiLabelSegTTAModel needs a multi-label segmentor with '
                            f'per-class thresholds, got {type(self.module).__name__}')
        strict = getattr(self.module, 'strict_threshold', False)
        merged = []
        for data_samples in data_samples_list:
            probs = torch.stack([s.seg_logits.data for s in data_samples]).mean(dim=0)
            first = data_samples[0]
            out = first.clone()
            out.set_data({
                'seg_logits': PixelData(data=probs),
                'pred_sem_seg': PixelData(
                    data=threshold_scores(probs, thresholds, strict=strict)),
            })
            merged.append(out)
        return merged
