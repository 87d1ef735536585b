"""The DINO self-distillation loss with a centred, sharpened teacher (spec §5)."""
from typing import Sequence

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, get_world_size
from mmpretrain.registry import MODELS
from torch import nn


class CenteredDistillationLoss(nn.Module):
    """What the DINO and iBOT patch losses share (not registered).

    The checked temperatures and centre momentum, the ``(1, K)`` centre
    buffer, the centred and sharpened teacher distribution, the student
    log-distribution, and the centre update ``c <- m c + (1 - m) mean(g_t)``
    with the mean over all ranks (``mmengine.dist``).

    Args:
        out_channels (int): Number of prototypes K.
        student_temp (float): Student temperature (> 0).
        teacher_temp (float): Initial teacher temperature (> 0); the
            :class:`~aoissl_mm.engine.hooks.TeacherScheduleHook` sets it.
        center_momentum (float): Centre momentum in [0, 1).
    """

    def __init__(self, out_channels: int, student_temp: float, teacher_temp: float,
                 center_momentum: float) -> None:
        super().__init__()
        owner = type(self).__name__
        if not student_temp > 0:
            raise ValueError(f'{owner}: student_temp must be > 0, got {student_temp!r}')
        if not teacher_temp > 0:
            raise ValueError(f'{owner}: teacher_temp must be > 0, got {teacher_temp!r}')
        if not 0.0 <= center_momentum < 1.0:
            raise ValueError(f'{owner}: center_momentum must be in [0, 1), '
                             f'got {center_momentum!r}')
        self.student_temp = float(student_temp)
        self.teacher_temp = float(teacher_temp)
        self.center_momentum = float(center_momentum)
        self.register_buffer('center', torch.zeros(1, out_channels))

    def teacher_probs(self, teacher: torch.Tensor) -> torch.Tensor:
        """``softmax((g_t - c) / tau_t)`` over the last axis, without gradient."""
        return F.softmax((teacher.detach().float() - self.center) / self.teacher_temp, dim=-1)

    def student_log_probs(self, student: torch.Tensor) -> torch.Tensor:
        """``log_softmax(g_s / tau_s)`` over the last axis."""
        return F.log_softmax(student.float() / self.student_temp, dim=-1)

    @torch.no_grad()
    def update_center(self, teacher_outputs: Sequence[torch.Tensor]) -> None:
        """Move the centre towards the mean teacher output (in training mode only).

        Args:
            teacher_outputs (Sequence[torch.Tensor]): ``(..., K)`` teacher
                scores; the mean is over every row of every tensor and over
                all ranks (each rank holds the same number of rows).
        """
        if not self.training:
            return
        rows = torch.cat([t.detach().reshape(-1, t.shape[-1]).float() for t in teacher_outputs])
        total = rows.sum(dim=0, keepdim=True)
        all_reduce(total, op='sum')
        mean = total / (rows.shape[0] * get_world_size())
        self.center.mul_(self.center_momentum).add_(
            mean.to(self.center.dtype), alpha=1.0 - self.center_momentum)


@MODELS.register_module()
class DINOLoss(CenteredDistillationLoss):
    """Cross-entropy between the teacher's and the student's prototype distributions.

    For teacher view ``t`` (a global crop) and student view ``s``::

        P_t = softmax((g_t - c) / tau_t),   log P_s = log_softmax(g_s / tau_s)
        l(t, s) = mean over the batch of  - sum_k P_t[k] log P_s[k]

    and the loss is the mean of ``l(t, s)`` over every pair with ``s != t``:
    the teacher's global crops against the student's outputs on every OTHER
    crop. Same-view pairs are skipped, as in DINO. Spec §5 records that the
    reference (REF) averages over all pairs including the same-view ones
    (DINOv2-style) and updates the centre before using it (spec §11 item 3);
    here, as in DINO, the centre ``c`` is used first and then updated:
    ``c <- m c + (1 - m) mean(g_t)``, the mean over the batch and the teacher
    views, all-reduced across processes under DDP (``mmengine.dist``). The
    teacher temperature ``tau_t`` is an attribute that
    :class:`~aoissl_mm.engine.hooks.TeacherScheduleHook` warms up
    (0.04 -> 0.07 over the first 30 % of the schedule).

    Args:
        out_channels (int): Number of prototypes K. Defaults to 768.
        student_temp (float): Student temperature. Defaults to 0.1.
        teacher_temp (float): Initial teacher temperature. Defaults to 0.04.
        center_momentum (float): Centre momentum. Defaults to 0.9.
    """

    def __init__(self,
                 out_channels: int = 768,
                 student_temp: float = 0.1,
                 teacher_temp: float = 0.04,
                 center_momentum: float = 0.9) -> None:
        super().__init__(out_channels, student_temp, teacher_temp, center_momentum)

    def forward(self, student_outputs: Sequence[torch.Tensor],
                teacher_outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The loss; updates the centre afterwards (in training mode).

        Args:
            student_outputs (Sequence[torch.Tensor]): ``(B, K)`` scores per
                student view: the global crops first (in the teacher's order),
                then the local crops.
            teacher_outputs (Sequence[torch.Tensor]): ``(B, K)`` scores per
                teacher view (the global crops); teacher view ``i`` is the same
                crop as student view ``i``.

        Returns:
            torch.Tensor: Scalar loss (float32).
        """
        if not 1 <= len(teacher_outputs) <= len(student_outputs):
            raise ValueError(f'DINOLoss: need 1 to {len(student_outputs)} teacher views (the '
                             f'student sees every teacher view), got {len(teacher_outputs)}')
        teacher = [self.teacher_probs(t) for t in teacher_outputs]
        student = [self.student_log_probs(s) for s in student_outputs]
        total, pairs = student[0].new_zeros(()), 0
        for ti, p_t in enumerate(teacher):
            for si, log_p_s in enumerate(student):
                if si == ti:
                    continue
                total = total + torch.sum(-p_t * log_p_s, dim=-1).mean()
                pairs += 1
        if pairs == 0:
            raise ValueError('DINOLoss: no (teacher, student) pair of different views')
        self.update_center(teacher_outputs)
        return total / pairs
