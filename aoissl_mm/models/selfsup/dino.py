"""DINO with an EMA teacher of the student backbone AND head (spec §5, BUG of §11 item 3 fixed)."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

#: Number of global crops (the first views of the multi-crop batch list).
NUM_GLOBAL_CROPS = 2


@MODELS.register_module()
class DINO(BaseSelfSupervisor):
    """Self-distillation with no labels, for the AOI backbones' ``forward_ssl``.

    The student (``backbone`` + ``head``) sees every crop; the teacher sees
    the two global crops. Each crop's CLS embedding (``x_norm_clstoken`` of
    ``backbone.forward_ssl``; FasterViT's is the mean of its final tokens)
    goes through the head, and ``loss_cls`` (:class:`DINOLoss`) compares the
    teacher's centred, sharpened distributions with the student's on every
    other crop.

    The teacher is a copy of the student backbone **and** head (the reference
    keeps a random, never-updated teacher head, spec §5 BUG). It never gets
    gradients, always runs in eval mode (no drop-path, BatchNorm uses its
    averaged statistics), and is updated by :meth:`update_teacher` after every
    optimiser step (by :class:`~aoissl_mm.engine.hooks.TeacherScheduleHook`)::

        teacher <- m * teacher + (1 - m) * student

    for every parameter and floating-point buffer (integer buffers are
    copied). The student encoder is stored under ``backbone.``, so the
    fine-tuning configs load it with ``prefix='backbone.'`` unchanged.

    Inputs: the list of view batches of
    :class:`~aoissl_mm.datasets.transforms.AOIMultiCrop` (2 global crops of
    one size, then the local crops of another).

    Args:
        backbone (dict): ``AOIViT`` or ``FasterViT`` config (must provide
            ``forward_ssl``).
        head (dict): :class:`DINOHead` config.
        loss_cls (dict): CLS loss config. Defaults to ``dict(type='DINOLoss')``.
        data_preprocessor (dict, optional): Defaults to
            ``AOISelfSupDataPreprocessor`` (2-channel Z-score).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 loss_cls: dict = dict(type='DINOLoss'),
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='AOISelfSupDataPreprocessor')
        super().__init__(backbone=backbone, head=head, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not callable(getattr(self.backbone, 'forward_ssl', None)):
            raise TypeError(f'{type(self).__name__}: the backbone '
                            f'{type(self.backbone).__name__} has no forward_ssl(x, mask)')
        self.loss_cls = MODELS.build(loss_cls)
        self.teacher = nn.ModuleDict(dict(backbone=copy.deepcopy(self.backbone),
                                          head=copy.deepcopy(self.head)))
        self.teacher.requires_grad_(False)
        self.teacher.eval()

    # ---------------------------------------------------------------- teacher
    def init_weights(self) -> None:
        """Initialise the student, then make the teacher an exact copy of it."""
        super().init_weights()
        self.teacher.backbone.load_state_dict(self.backbone.state_dict())
        self.teacher.head.load_state_dict(self.head.state_dict())

    def train(self, mode: bool = True) -> 'DINO':
        """Set the student's mode; the teacher stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def _student_teacher_pairs(self):
        for name in ('backbone', 'head'):
            student, teacher = getattr(self, name), self.teacher[name]
            params = zip(student.named_parameters(), teacher.named_parameters())
            buffers = zip(student.named_buffers(), teacher.named_buffers())
            for (ns, s), (nt, t) in list(params) + list(buffers):
                if ns != nt:
                    raise RuntimeError(f'{type(self).__name__}: teacher and student {name} '
                                       f'differ ({nt!r} vs {ns!r})')
                yield s, t

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """``teacher <- momentum * teacher + (1 - momentum) * student``.

        Args:
            momentum (float): Teacher momentum in [0, 1] (0.996 -> 1 in DINO;
                1 keeps the teacher, 0 copies the student).
        """
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'{type(self).__name__}: teacher momentum must be in [0, 1], '
                             f'got {momentum!r}')
        for s, t in self._student_teacher_pairs():
            if t.dtype.is_floating_point:
                t.mul_(momentum).add_(s.detach().to(t.dtype), alpha=1.0 - momentum)
            else:
                t.copy_(s)

    def set_teacher_temp(self, temp: float) -> None:
        """Set the teacher temperature of every loss that has one."""
        for loss in self._losses():
            loss.teacher_temp = float(temp)

    def _losses(self) -> List[nn.Module]:
        return [self.loss_cls]

    # ---------------------------------------------------------------- forward
    @staticmethod
    def split_views(inputs: Sequence[torch.Tensor]
                    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """The global and local view batches, checked."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) < NUM_GLOBAL_CROPS + 1:
            raise ValueError(f'DINO/iBOT: expected a list of >= {NUM_GLOBAL_CROPS + 1} view '
                             f'batches (2 global crops, then local crops, from AOIMultiCrop), '
                             f'got {type(inputs).__name__} of length '
                             f'{len(inputs) if isinstance(inputs, (list, tuple)) else "-"}')
        views, local = list(inputs[:NUM_GLOBAL_CROPS]), list(inputs[NUM_GLOBAL_CROPS:])
        for group, name in ((views, 'global'), (local, 'local')):
            shapes = {tuple(v.shape) for v in group}
            if len(shapes) != 1:
                raise ValueError(f'DINO/iBOT: the {name} view batches must share one shape, '
                                 f'got {sorted(shapes)}')
        return views, local

    @staticmethod
    def encode(backbone: nn.Module, views: Sequence[torch.Tensor],
               mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """``backbone.forward_ssl`` of the views concatenated along the batch."""
        return backbone.forward_ssl(torch.cat(list(views)), mask)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """The DINO loss of a multi-crop batch.

        Args:
            inputs (List[torch.Tensor]): View batches, 2 global then local.
            data_samples (List[DataSample]): Unused by DINO.

        Returns:
            Dict[str, torch.Tensor]: ``loss``.
        """
        views, local = self.split_views(inputs)
        n = views[0].shape[0]
        with torch.no_grad():
            t_cls = self.teacher.head(
                self.encode(self.teacher.backbone, views)['x_norm_clstoken'])
        s_global = self.head(self.encode(self.backbone, views)['x_norm_clstoken'])
        s_local = self.head(self.encode(self.backbone, local)['x_norm_clstoken'])
        student_outs = list(s_global.split(n)) + list(s_local.split(n))
        return dict(loss=self.loss_cls(student_outs, list(t_cls.split(n))))

