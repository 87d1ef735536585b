"""iBOT's masked-patch self-distillation loss, on masked tokens only (spec §6, paper Eq. 10)."""
from typing import Sequence

import torch
from mmpretrain.registry import MODELS

from .dino_loss import CenteredDistillationLoss


@MODELS.register_module()
class IBOTPatchLoss(CenteredDistillationLoss):
    """Cross-entropy between teacher and student patch distributions at masked tokens.

    For global view ``v``, the student sees the masked crop and the teacher
    the same crop unmasked. At token ``i`` of image ``b``::

        P_t = softmax((g_t[b, i] - c) / tau_t),  log P_s = log_softmax(g_s[b, i] / tau_s)
        l(b, i) = - sum_k P_t[k] log P_s[k]

    Per (image, view) the loss is the mean of ``l`` over its masked tokens
    (``mask`` True); the result is the mean over the (image, view) pairs that
    have at least one masked token. Unmasked tokens never count (the
    reference averages over all tokens and ignores the mask, spec §6); an
    (image, view) without masked tokens is skipped; with none at all the loss
    is 0 (connected to the graph). The patch centre ``c`` is separate from the
    CLS centre: used first, then ``c <- m c + (1 - m) mean(g_t)`` over the
    batch, the tokens and the views, all-reduced under DDP. ``teacher_temp``
    is set by :class:`~aoissl_mm.engine.hooks.TeacherScheduleHook`.

    Args:
        out_channels (int): Number of prototypes K. Defaults to 768.
        student_temp (float): Student temperature. Defaults to 0.1.
        teacher_temp (float): Initial teacher temperature. Defaults to 0.04.
        center_momentum (float): Patch-centre momentum. Defaults to 0.9.
    """

    def __init__(self,
                 out_channels: int = 768,
                 student_temp: float = 0.1,
                 teacher_temp: float = 0.04,
                 center_momentum: float = 0.9) -> None:
        super().__init__(out_channels, student_temp, teacher_temp, center_momentum)

    def forward(self, student_patches: Sequence[torch.Tensor],
                teacher_patches: Sequence[torch.Tensor],
                masks: Sequence[torch.Tensor]) -> torch.Tensor:
        """The loss; updates the patch centre afterwards (in training mode).

        Args:
            student_patches (Sequence[torch.Tensor]): ``(B, L, K)`` scores per
                global view, from the masked crops.
            teacher_patches (Sequence[torch.Tensor]): ``(B, L, K)`` scores per
                global view, from the unmasked crops.
            masks (Sequence[torch.Tensor]): Bool ``(B, L)`` (or ``(B, h, w)``
                with ``h * w = L``, row-major) per global view; True = masked.

        Returns:
            torch.Tensor: Scalar loss (float32).
        """
        if not len(student_patches) == len(teacher_patches) == len(masks) >= 1:
            raise ValueError(f'IBOTPatchLoss: need the same number (>= 1) of student, teacher '
                             f'and mask views, got {len(student_patches)}, '
                             f'{len(teacher_patches)} and {len(masks)}')
        per_image = []
        for s, t, m in zip(student_patches, teacher_patches, masks):
            if s.shape != t.shape or s.dim() != 3:
                raise ValueError(f'IBOTPatchLoss: student and teacher patches must both be '
                                 f'(B, L, K), got {tuple(s.shape)} and {tuple(t.shape)}')
            m = m.reshape(m.shape[0], -1).to(device=s.device, dtype=torch.bool)
            if tuple(m.shape) != tuple(s.shape[:2]):
                raise ValueError(f'IBOTPatchLoss: mask of shape {tuple(m.shape)} does not fit '
                                 f'patches of shape {tuple(s.shape)} (expected (B, L))')
            p_t = self.teacher_probs(t)
            log_p_s = self.student_log_probs(s)
            token_loss = torch.sum(-p_t * log_p_s, dim=-1)  # (B, L)
            count = m.sum(dim=1)
            keep = count > 0
            masked_sum = torch.where(m, token_loss, torch.zeros_like(token_loss)).sum(dim=1)
            per_image.append((masked_sum[keep] / count[keep]))
        values = torch.cat(per_image)
        if values.numel() > 0:
            loss = values.mean()
        else:
            loss = sum(s.float().sum() for s in student_patches) * 0.0
        self.update_center(teacher_patches)
        return loss
