"""In-context segmentation: labels transferred from a Faiss memory of labelled patches."""
import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList
from torch import Tensor, nn

from ..retrieval import PatchMemory, aggregate_neighbours, unpatchify_scores
from ..utils.multilabel_prediction import check_thresholds
from .multilabel_predictor_mixin import MultiLabelPredictorMixin
from .retrieval_memory_mixin import RetrievalMemoryMixin

IntOrList = Union[int, Sequence[int]]
FloatOrList = Union[float, Sequence[float]]

LEVELS = ('patch', 'image')
AGGREGATIONS = ('similarity', 'attention')


def _per_class(value: Union[int, float, Sequence], num_classes: int, name: str, kind: type,
               positive: bool = True) -> Tuple:
    """Expand a scalar to one value per class and validate it."""
    if isinstance(value, (list, tuple)):
        values = list(value)
        if len(values) != num_classes:
            raise ValueError(f"'{name}' must be one {kind.__name__} or a list of {num_classes} "
                             f'(one per class), got {len(values)} values: {values}')
    else:
        values = [value] * num_classes
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (
                kind is int and not float(v).is_integer()):
            raise ValueError(f"'{name}' values must be {kind.__name__}s, got {values}")
        if positive and not v > 0:
            raise ValueError(f"'{name}' values must be > 0, got {values}")
    return tuple(kind(v) for v in values)


@MODELS.register_module()
class RetrievalSegmentor(RetrievalMemoryMixin, MultiLabelPredictorMixin, BaseSegmentor):
    """A frozen backbone and a memory of labelled patches in place of a decode head.

    Labels are transferred from the nearest labelled patches (AOI-SSL spec
    §8, after Hummingbird): a new device is adapted to by adding its labelled
    images to the memory, not by training.

    * ``level='patch'`` (Eq. 4-6): a key per output token (the L2-normalised
      final ``x_norm_patchtokens``), its value the full p×p×C ground-truth
      mask of that patch (cut row-major in token order). A query token gets
      the weighted mean of its top-k neighbours' masks.
    * ``level='image'`` (Eq. 7): a key per image (the normalised
      ``x_norm_clstoken``; FasterViT: the mean token), its value the whole
      mask. All memory images must have one size; a query of another size
      gets the aggregated mask resized bilinearly.

    Aggregation over the k neighbours (best first): ``'similarity'``, with
    ``similarity_mode='inverse_distance'`` (the reference's w_j ∝ 1/(1 - s_j
    + 1e-8), default) or ``'normalized'`` (w_j = s_j / Σ s); or
    ``'attention'`` (softmax(s / β)). ``k`` and ``beta`` may be per class: one
    search at the largest k serves every class. Scores are thresholded
    strictly (``score > threshold``, spec §8.2).

    Similarities are clamped to ≤ 1, and neighbours with equal similarity
    (identical keys: black or padded patches) are ordered by insertion:
    the earlier-added entry wins (see :mod:`aoissl_mm.models.retrieval`).

    The memory is not part of ``state_dict`` (checkpoints stay small and
    weights-only); it is built by :meth:`build_memory` (the
    ``RetrievalMemoryHook`` calls it before evaluation) or set from a saved
    one with :meth:`load_memory`, which checks its metadata (level, patch
    size, key size, value shape, classes, backbone config and weight digest,
    input normalisation) and its files' SHA-256 against this model.

    Args:
        backbone (dict | nn.Module): Backbone config (or a live module,
            used as is and not frozen: the SSL probe shares the student's);
            it must have ``forward_ssl(x)``
            returning ``x_norm_patchtokens`` (B, N, D) and
            ``x_norm_clstoken`` (B, D) (``AOIViT``, ``FasterViT``,
            ``DINOv2Tokens``). It is frozen and always in eval mode.
        num_classes (int): Number of (overlapping) classes.
        class_names (Sequence[str], optional): Their names (the tools fill
            them from the dataset); stored in and checked against a memory.
        level (str): ``'patch'`` or ``'image'``. Defaults to ``'patch'``.
        patch_size (int, optional): Pixels per output token; defaults to
            the backbone's ``patch_size`` (ViT) or ``out_stride`` (FasterViT).
        k (int | Sequence[int]): Neighbours, one or per class. Defaults to 30.
        aggregation (str): ``'similarity'`` or ``'attention'``.
        similarity_mode (str): ``'inverse_distance'`` or ``'normalized'``.
        beta (float | Sequence[float]): Attention temperature, one or per
            class. Defaults to 0.02.
        threshold (float | Sequence[float]): Score thresholds, one or per
            class, strictly inside (0, 1). Defaults to 0.5.
        memory (dict, optional): :class:`PatchMemory` options
            (``index_type``, ``fp16_keys``, ``nlist``, ``nprobe``, ``pq_m``,
            ``device``, ``shard_size``), ``mmap_keys`` (a saved memory's
            indexes are memory-mapped when loaded: larger than RAM) and
            ``verify`` (check a saved memory's files against their SHA-256
            when loaded; default True, False for a memory too large to read
            through at every load).
        memory_sampling (dict, optional): ``dict(per_image=N, seed=0)``
            keeps at most N patches per memory image, rare classes first
            (spec §8.1 bounded mode). None keeps every patch (the paper's).
        query_chunk (int): Query tokens aggregated at once (bounds the
            (chunk, k, p², C) value tensor). Defaults to 2048.
        random_backbone (bool): The backbone is deliberately random (a
            baseline): ``tools/test.py`` then runs without a checkpoint.
        checkpoint_prefix (str): Where the backbone lies in a checkpoint
            given to ``tools/test.py`` / ``tools/memory.py``. Defaults to
            ``'backbone.'`` (MAE, a fine-tuned model, DINO's / iBOT's
            student); ``'teacher.backbone.'`` takes DINO's / iBOT's EMA
            teacher, the network DINO evaluates.
        data_preprocessor (dict, optional): ``SegDataPreProcessor`` config.
        test_cfg (dict, optional): ``mode='whole'`` or ``'slide'`` (with
            ``crop_size``/``stride``), as mmseg's.
        init_cfg (dict, optional): Initialisation config.
    """

    strict_threshold = True

    def __init__(self,
                 backbone: ConfigType,
                 num_classes: int,
                 class_names: Optional[Sequence[str]] = None,
                 level: str = 'patch',
                 patch_size: Optional[int] = None,
                 k: IntOrList = 30,
                 aggregation: str = 'similarity',
                 similarity_mode: str = 'inverse_distance',
                 beta: FloatOrList = 0.02,
                 threshold: FloatOrList = 0.5,
                 memory: OptConfigType = None,
                 memory_sampling: OptConfigType = None,
                 query_chunk: int = 2048,
                 random_backbone: bool = False,
                 checkpoint_prefix: str = 'backbone.',
                 data_preprocessor: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if level not in LEVELS:
            raise ValueError(f"'level' must be one of {LEVELS}, got {level!r}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"'aggregation' must be one of {AGGREGATIONS}, got {aggregation!r}")
        if similarity_mode not in ('inverse_distance', 'normalized'):
            raise ValueError("'similarity_mode' must be 'inverse_distance' or 'normalized', "
                             f'got {similarity_mode!r}')
        if level == 'image' and aggregation == 'attention':
            raise ValueError("level='image' supports aggregation='similarity' only (spec §8.3)")
        # a live module (the SSL probe shares the student's) is used as is: not frozen
        self.owns_backbone = not isinstance(backbone, nn.Module)
        if self.owns_backbone:
            self.backbone_cfg = dict(backbone)
            self.backbone = MODELS.build(backbone)
        else:
            self.backbone_cfg = dict(type=type(backbone).__name__)
            self.backbone = backbone
        if not callable(getattr(self.backbone, 'forward_ssl', None)):
            raise TypeError('RetrievalSegmentor needs a backbone with forward_ssl(x) (AOIViT, '
                            f'FasterViT, DINOv2Tokens), got {type(self.backbone).__name__}')
        if self.owns_backbone:
            self.backbone.requires_grad_(False)
        self.num_classes = int(num_classes)
        if class_names is not None and len(class_names) != self.num_classes:
            raise ValueError(f"'class_names' must name num_classes={self.num_classes} classes, "
                             f'got {list(class_names)}')
        self.class_names = list(class_names) if class_names is not None else None
        self.out_channels = self.num_classes
        self.align_corners = False
        self.level = level
        self.patch_size = int(patch_size or getattr(self.backbone, 'patch_size', None)
                              or getattr(self.backbone, 'out_stride', 0))
        if self.patch_size <= 0:
            raise ValueError('patch_size could not be inferred from the backbone '
                             f'{type(self.backbone).__name__}; set it in the config')
        self.ks = _per_class(k, self.num_classes, 'k', int)
        self.betas = _per_class(beta, self.num_classes, 'beta', float)
        self.thresholds = check_thresholds(threshold, self.num_classes)
        self.aggregation = aggregation
        self.similarity_mode = similarity_mode
        memory = dict(memory or {})
        # options of loading a saved memory; the rest are PatchMemory constructor options
        self.memory_load_cfg = {k: memory.pop(k) for k in ('mmap_keys', 'verify') if k in memory}
        self.memory_cfg = memory
        self.memory_sampling = dict(memory_sampling) if memory_sampling else None
        if self.memory_sampling is not None:
            unknown = set(self.memory_sampling) - {'per_image', 'seed'}
            if unknown or int(self.memory_sampling.get('per_image', 0)) <= 0:
                raise ValueError("'memory_sampling' must be dict(per_image=N > 0, seed=0), got "
                                 f'{self.memory_sampling}')
        if query_chunk <= 0:
            raise ValueError(f"'query_chunk' must be > 0, got {query_chunk}")
        self.query_chunk = int(query_chunk)
        self.random_backbone = bool(random_backbone)
        if not isinstance(checkpoint_prefix, str) or not checkpoint_prefix.endswith('.'):
            raise ValueError("'checkpoint_prefix' must be a key prefix ending in '.', e.g. "
                             f"'backbone.' or 'teacher.backbone.', got {checkpoint_prefix!r}")
        self.checkpoint_prefix = checkpoint_prefix
        self.test_cfg = test_cfg if test_cfg is not None else dict(mode='whole')
        self.train_cfg = train_cfg
        self.memory: Optional[PatchMemory] = None

    # ------------------------------------------------------------ frozen backbone
    def train(self, mode: bool = True) -> 'RetrievalSegmentor':
        """Keep the frozen backbone in eval mode whatever ``mode`` is."""
        super().train(mode)
        if self.owns_backbone:
            self.backbone.eval()
        return self

    @property
    def needs_checkpoint(self) -> bool:
        """Whether ``tools/test.py`` needs a checkpoint for the backbone."""
        return not (self.random_backbone or self.backbone_cfg.get('init_cfg'))

    def init_without_checkpoint(self) -> str:
        """Initialise the backbone for a run without a checkpoint, and say how (logged).

        mmengine's ``Runner.test()`` never calls ``init_weights()``, so the
        backbone's ``init_cfg`` (e.g. ``Pretrained``) would silently not be
        loaded; ``tools/test.py`` calls this instead of loading a checkpoint.

        Returns:
            str: The initialisation used: the backbone's ``init_cfg``, or the
            random weights of ``random_backbone=True``.

        Raises:
            ValueError: The backbone needs a checkpoint (neither ``init_cfg``
                nor ``random_backbone=True``).
        """
        if self.needs_checkpoint:
            raise ValueError('a checkpoint holding the backbone is required: the config neither '
                             'loads it by model.backbone.init_cfg nor sets random_backbone=True')
        self.init_weights()
        init_cfg = self.backbone_cfg.get('init_cfg')
        if init_cfg:
            how = f'backbone initialised by its init_cfg {dict(init_cfg)!r}'
        else:
            how = ('backbone random on purpose (random_backbone=True): its constructor '
                   f'initialisation, weight digest {self.backbone_digest()}')
        print_log(f'RetrievalSegmentor: no checkpoint; {how}', logger='current',
                  level=logging.INFO)
        return how

    def filter_checkpoint_state(self, state: Dict[str, Tensor],
                                source: str) -> Dict[str, Tensor]:
        """Keep a checkpoint's backbone tensors (SSL, fine-tuned or bare backbone).

        Args:
            state (dict): The checkpoint's state dict.
            source (str): Its file or URL, for messages.

        Returns:
            dict: The tensors under ``checkpoint_prefix``, renamed to
            ``backbone.*`` and passed through the backbone's
            ``convert_checkpoint`` when it has one (``AOIViT`` resizes a
            position table of another grid); the other keys (an SSL decoder, a teacher or
            student, a decode head) are dropped with a log line. With the
            default prefix, a state dict without any ``backbone.`` key is
            taken as a bare backbone.

        Raises:
            ValueError: A non-default ``checkpoint_prefix`` that no key has
                (the message lists the prefixes the checkpoint has).
        """
        prefix = self.checkpoint_prefix
        bare = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not bare and prefix == 'backbone.':
            bare = dict(state)
        elif not bare:
            heads = sorted({'.'.join(k.split('.')[:2]) + '.' for k in state})
            raise ValueError(f"{source}: no key starts with checkpoint_prefix={prefix!r}; its keys "
                             f'start with {", ".join(heads[:8])}')
        convert = getattr(self.backbone, 'convert_checkpoint', None)
        if convert is not None:  # e.g. an iBOT encoder's 224 position table on a 512 model
            bare = convert(bare)
        kept = {f'backbone.{k}': v for k, v in bare.items()}
        dropped = sorted({k.split('.')[0] for k in state if not k.startswith(prefix)}
                         ) if len(kept) < len(state) else []
        if dropped:
            print_log(f'RetrievalSegmentor: using the backbone under {prefix!r} of {source}; '
                      f'ignoring its {len(state) - len(kept)} other tensors (under '
                      f'{", ".join(dropped)})', logger='current', level=logging.INFO)
        return kept

    # ------------------------------------------------------------ features
    def _pad_to_patch(self, inputs: Tensor) -> Tensor:
        """Pad (bottom/right) to a multiple of the patch with the normalised black value."""
        return self.pad_to_multiple(inputs, self.patch_size)

    @torch.no_grad()
    def extract_feat(self, inputs: Tensor) -> Tensor:
        """The keys this segmentor stores or queries for ``inputs``.

        Args:
            inputs (Tensor): Normalised images (B, C_in, H, W); H and W are
                padded to a multiple of the patch with black.

        Returns:
            Tensor: L2-normalised float32 keys: (B, N, D) patch tokens in
            row-major order for ``level='patch'``, (B, D) for ``'image'``.
        """
        self.backbone.eval()
        out = self.backbone.forward_ssl(self._pad_to_patch(inputs))
        if self.level == 'patch':
            keys = out['x_norm_patchtokens']
        else:
            keys = out['x_norm_clstoken']
        return F.normalize(keys.float(), dim=-1)

    # ------------------------------------------------------------ prediction
    def _aggregate(self, queries: Tensor) -> Tensor:
        """Aggregated (M, units, C) scores of (M, D) query keys, in chunks."""
        if self.memory is None:
            raise RuntimeError('RetrievalSegmentor has no memory: build one (RetrievalMemoryHook, '
                               'tools/memory.py build) or load one before predicting')
        if len(self.memory) == 0:
            raise RuntimeError(f'RetrievalSegmentor: the memory is empty ({self.memory.describe()})'
                               '; add labelled images to it before predicting')
        k_max = max(self.ks)
        if k_max > len(self.memory):
            raise ValueError(f'k={k_max} is larger than the memory ({self.memory.describe()}); '
                             'lower k or add images to the memory')
        outs = []
        for start in range(0, queries.shape[0], self.query_chunk):
            chunk = queries[start:start + self.query_chunk].cpu()
            sims, ids = self.memory.search(chunk, k_max)
            values = self.memory.gather_values(ids)
            outs.append(aggregate_neighbours(sims, values, self.ks, self.aggregation,
                                             self.betas, self.similarity_mode))
        # a weighted mean of {0, 1} values: in [0, 1] up to float rounding, which is removed
        return torch.cat(outs).clamp_(0.0, 1.0).to(queries.device)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Transferred per-class scores in [0, 1], (B, C, H, W), of a batch."""
        batch, _, height, width = inputs.shape
        keys = self.extract_feat(inputs)
        if self.level == 'patch':
            p = self.patch_size
            grid = (-(-height // p), -(-width // p))
            scores = self._aggregate(keys.flatten(0, 1)).view(batch, grid[0] * grid[1], p * p,
                                                              self.num_classes)
            return unpatchify_scores(scores, grid, p)[:, :, :height, :width].contiguous()
        scores = self._aggregate(keys)  # (B, H_m * W_m, C)
        side = self.memory.metadata['image_size']
        maps = scores.transpose(1, 2).reshape(batch, self.num_classes, *side)
        if tuple(side) != (height, width):
            maps = F.interpolate(maps, size=(height, width), mode='bilinear',
                                 align_corners=False)
        return maps

    def window_scores(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Transferred scores of one window (scores already lie in [0, 1])."""
        return self.encode_decode(inputs, batch_img_metas).float()

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None) -> SampleList:
        """Scores (``seg_logits``) and strict-threshold masks (``pred_sem_seg``).

        Args:
            inputs (Tensor): Normalised images (N, C_in, H, W).
            data_samples (list[SegDataSample], optional): Samples with metainfo.

        Returns:
            list[SegDataSample]: As :class:`MultiLabelEncoderDecoder`'s.
        """
        if data_samples is not None:
            batch_img_metas = [s.metainfo for s in data_samples]
        else:
            batch_img_metas = [dict(ori_shape=inputs.shape[2:], img_shape=inputs.shape[2:],
                                    pad_shape=inputs.shape[2:], padding_size=[0, 0, 0, 0])
                               ] * inputs.shape[0]
        with torch.no_grad():
            scores = self.inference(inputs, batch_img_metas)
        return self.postprocess_result(scores, data_samples)

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        """Raw transferred scores (N, C, H, W) (``mode='tensor'``)."""
        return self.encode_decode(inputs, [])

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Not trainable: adapt by adding labelled images to the memory instead."""
        raise RuntimeError('RetrievalSegmentor is not trained: its backbone is frozen and its '
                           "'decode head' is a memory; build or extend the memory "
                           '(tools/memory.py build|add) and evaluate with tools/test.py')
