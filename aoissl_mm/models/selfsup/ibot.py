"""iBOT: DINO's CLS objective plus masked-patch self-distillation, one shared head (spec §6)."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

from .dino import DINO, NUM_GLOBAL_CROPS


@MODELS.register_module()
class IBOT(DINO):
    """iBOT for the AOI backbones (ViT-Tiny; FasterViT-0 with its mean-pooled CLS).

    On top of :class:`DINO`: each global crop carries a block-wise token mask
    (``data_sample.mask``, ``(2, h, w)`` from
    :class:`~aoissl_mm.datasets.transforms.AOIMultiCrop` with
    ``mask_patch_size``; an all-False mask = unmasked view). The student
    encodes the masked global crops (masked tokens replaced by the backbone's
    mask token) and the unmasked local crops; the teacher encodes the
    unmasked global crops. The shared head projects the CLS embeddings
    (``loss_cls``, :class:`DINOLoss`, over every other crop) and every patch
    token (``loss_patch``, :class:`IBOTPatchLoss`, same view and position,
    masked tokens only, its own centre). The total is
    ``loss_cls + loss_patch``.

    The patch objective starts at the share ``patch_loss_start`` of the
    schedule: :class:`~aoissl_mm.engine.hooks.TeacherScheduleHook` calls
    :meth:`set_progress` before every iteration (FasterViT-0: 0.25, the
    paper's 25 of 100 epochs; ViT-Tiny: 0). Until then the student sees the
    global crops unmasked and only the CLS loss trains (the reference keeps a
    patch loss on unmasked crops then, spec §6).

    Args:
        backbone (dict): ``AOIViT`` or ``FasterViT`` config.
        head (dict): :class:`DINOHead` config (shared by CLS and patches).
        loss_cls (dict): CLS loss. Defaults to ``dict(type='DINOLoss')``.
        loss_patch (dict): Patch loss. Defaults to ``dict(type='IBOTPatchLoss')``.
        patch_loss_start (float): Share of the schedule after which the patch
            loss is on, in [0, 1]. Defaults to 0.
        data_preprocessor (dict, optional): Defaults to
            ``AOISelfSupDataPreprocessor``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 loss_cls: dict = dict(type='DINOLoss'),
                 loss_patch: dict = dict(type='IBOTPatchLoss'),
                 patch_loss_start: float = 0.0,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(backbone=backbone, head=head, loss_cls=loss_cls,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not 0.0 <= float(patch_loss_start) <= 1.0:
            raise ValueError(f'IBOT: patch_loss_start must be a share of the schedule in '
                             f'[0, 1], got {patch_loss_start!r}')
        self.loss_patch = MODELS.build(loss_patch)
        self.patch_loss_start = float(patch_loss_start)
        self.patch_loss_enabled = self.patch_loss_start == 0.0

    def set_progress(self, share: float) -> None:
        """Switch the patch loss on once ``share >= patch_loss_start``."""
        self.patch_loss_enabled = share >= self.patch_loss_start

    def _losses(self) -> List[nn.Module]:
        return [self.loss_cls, self.loss_patch]

    @staticmethod
    def global_masks(data_samples: List[DataSample], batch: int) -> torch.Tensor:
        """Stack ``data_sample.mask`` into bool ``(2, B, h, w)`` (view-major)."""
        if data_samples is None or len(data_samples) != batch or not all(
                'mask' in ds for ds in data_samples):
            raise ValueError('IBOT: every data sample needs a mask of its global crops; use '
                             'AOIMultiCrop with mask_patch_size (and PackInputs)')
        masks = torch.stack([ds.mask for ds in data_samples]).to(torch.bool)
        if masks.dim() != 4 or masks.shape[1] != NUM_GLOBAL_CROPS:
            raise ValueError(f'IBOT: expected masks of shape (B, {NUM_GLOBAL_CROPS}, h, w), '
                             f'got {tuple(masks.shape)}')
        return masks.transpose(0, 1)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """The iBOT losses of a masked multi-crop batch.

        Args:
            inputs (List[torch.Tensor]): View batches, 2 global then local.
            data_samples (List[DataSample]): With ``mask`` ``(2, h, w)``.

        Returns:
            Dict[str, torch.Tensor]: ``loss_cls`` and, while enabled, ``loss_patch``.
        """
        views, local = self.split_views(inputs)
        n = views[0].shape[0]
        masks = self.global_masks(data_samples, n).to(views[0].device)
        use_patch = self.patch_loss_enabled
        with torch.no_grad():
            t_out = self.encode(self.teacher.backbone, views)
            t_cls = self.teacher.head(t_out['x_norm_clstoken'])
            t_patch = self.teacher.head(t_out['x_norm_patchtokens']) if use_patch else None
        s_out = self.encode(self.backbone, views, masks.flatten(0, 1) if use_patch else None)
        s_cls = self.head(s_out['x_norm_clstoken'])
        s_local = self.head(self.encode(self.backbone, local)['x_norm_clstoken'])
        student_cls = list(s_cls.split(n)) + list(s_local.split(n))
        losses = dict(loss_cls=self.loss_cls(student_cls, list(t_cls.split(n))))
        if use_patch:
            s_patch = self.head(s_out['x_norm_patchtokens'])
            losses['loss_patch'] = self.loss_patch(
                list(s_patch.split(n)), list(t_patch.split(n)), list(masks.flatten(2)))
        return losses
