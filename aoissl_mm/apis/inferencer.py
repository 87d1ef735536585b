"""Segment unlabelled 2-channel AOI images with any segmentor config of the package.

The API shape follows mmseg's ``MMSegInferencer`` (config + checkpoint in,
``__call__(inputs)`` out), without its pipeline machinery: the evaluation
pipelines pad + centre-crop (``PadCenterCrop``) and would cut away what
inference must keep, so an image is read with :class:`LoadAOIImage` (or taken
as an array), padded bottom/right with black (raw 0, as the evaluation
pipeline pads) to a multiple of the model's size divisor / patch, scored by
the model (sliding window when it is larger than the crop), cropped back to
its full original size and thresholded with the package's one rule
(:func:`~aoissl_mm.models.utils.threshold_scores`: ``>=`` for fine-tuned
segmentors, ``>`` for retrieval).
"""
import math
import os.path as osp
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmengine.config import Config, ConfigDict

from ..datasets.io import AOIDataError
from ..datasets.metainfo import AOI_CLASSES, AOI_PALETTE
from ..models.utils.multilabel_prediction import check_thresholds, threshold_scores
from .inference_inputs import (
    AOIResult,
    InferenceItem,
    InputsType,
    collect_inputs,
    culprit,
    load_image,
    note_range,
    range_warning,
    resolve_checkpoint,
    resolve_device,
)


def model_divisor(model: torch.nn.Module) -> int:
    """Input sizes of ``model`` must be multiples of this (size divisor, patch, stride)."""
    pre = getattr(model, 'data_preprocessor', None)
    values = [getattr(pre, 'size_divisor', None),
              (getattr(pre, 'test_cfg', None) or {}).get('size_divisor'),
              getattr(model, 'patch_size', None),
              getattr(model, 'window_divisor', None)]  # the segmentors' backbone patch
    divisor = 1
    for v in values:
        if isinstance(v, (tuple, list)):
            v = max(v)
        if isinstance(v, int) and v > 0:
            divisor = divisor * v // math.gcd(divisor, v)
    return divisor


class AOIInferencer:
    """Segment unlabelled buffer pairs with a fine-tuned or retrieval segmentor.

    Example:
        >>> inferencer = AOIInferencer('configs/fastervit0_upernet_aoi_cpu.py',
        ...                            'work_dirs/fv0_cpu/iter_N.pth')  # or 'work_dirs/fv0_cpu'
        >>> results = inferencer('new_lot/')   # a folder, any depth
        >>> results[0].masks.shape             # (H, W, 4) at the image's size

    Args:
        config (str): A segmentor config file of the package
            (``MultiLabelEncoderDecoder`` or ``RetrievalSegmentor``).
        checkpoint (str, optional): Weights, read weights-only; their keys
            and shapes must match the model. A folder is a work dir: the
            file its ``last_checkpoint`` names. A retrieval config takes any
            checkpoint holding ``backbone.*``, or None when its backbone is
            set by ``init_cfg`` or random on purpose. Required otherwise.
            A ``.onnx`` file from ``tools/export_onnx.py`` (fine-tuned
            configs) runs with onnxruntime instead; its metadata's classes,
            thresholds and mean/std must be the config's.
        device (str, optional): Where the model runs. Defaults to None:
            ``'cuda'`` when CUDA is available, else ``'cpu'`` (an ONNX
            model: ``'cpu'``, onnxruntime's CPU provider).
        thresholds (float | Sequence[float], optional): Per-class thresholds
            overriding the config's. Defaults to None.
        tta (bool): Average the probabilities of the identity, horizontal
            flip and vertical flip views (each flipped back). Defaults to
            False.
        cfg_options (dict, optional): Config overrides (keys are checked).
        progress (bool): Progress bar while a retrieval memory is built.

    Sliding window: unless the config's ``model.test_cfg`` already says
    ``mode='slide'``, it is set to ``crop_size`` = the config's crop (the
    top-level ``crop_size``, else the training pipeline's ``crop_size``, else
    the test pipeline's ``PadCenterCrop`` size, else 512; rounded up to the
    divisor) and ``stride`` = ceil(2/3 of it). An image no larger than the
    crop is one window, i.e. whole-image inference.

    Retrieval memory: from the config's ``RetrievalMemoryHook`` ``load_from``
    (checked against the model) or built once here from its dataloader.

    Attributes:
        checkpoint (str | None): The file read (a work dir resolved) or None.
    """

    def __init__(self,
                 config: str,
                 checkpoint: Optional[str] = None,
                 device: Optional[str] = None,
                 thresholds: Optional[Union[float, Sequence[float]]] = None,
                 tta: bool = False,
                 cfg_options: Optional[dict] = None,
                 progress: bool = True) -> None:
        from mmengine.registry import init_default_scope

        from ..utils.runner_setup import check_dataset_classes, load_config
        path = str(config)
        cfg = load_config(path, cfg_options)
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        if checkpoint is not None:
            checkpoint = resolve_checkpoint(str(checkpoint))
        self.checkpoint = checkpoint
        self.onnx = checkpoint is not None and str(checkpoint).lower().endswith('.onnx')
        # onnxruntime runs on the CPU provider: an ONNX model defaults to the CPU
        device = resolve_device('cpu' if device is None and self.onnx else device)
        self.device = torch.device(device)
        self.tta = bool(tta)
        if self.onnx:
            classes = check_dataset_classes(cfg, fill_class_names=True)
            self.model = self._build_onnx(cfg, path, str(checkpoint), classes)
        elif cfg.model.get('type') == 'RetrievalSegmentor':
            self.model, cfg = self._build_retrieval(path, checkpoint, cfg_options, device,
                                                    progress)
            classes = self.model.class_names
        else:
            classes = check_dataset_classes(cfg, fill_class_names=True)
            self.model = self._build_segmentor(cfg, path, checkpoint)
        self.cfg = cfg
        self.model.to(self.device).eval()
        self.num_classes = int(self.model.num_classes)
        self.class_names = self._class_names(classes)
        self.strict = bool(getattr(self.model, 'strict_threshold', False))
        self.thresholds = (check_thresholds(thresholds, self.num_classes, 'thresholds')
                           if thresholds is not None else tuple(self.model.thresholds))
        self.divisor = self._divisor()
        self._configure_slide(cfg)

    # ------------------------------------------------------------------ building
    @staticmethod
    def _build_segmentor(cfg: Config, path: str, checkpoint: Optional[str]) -> torch.nn.Module:
        """Build a fine-tuned segmentor and load its checkpoint weights-only and strictly."""
        from mmseg.registry import MODELS

        from ..utils.checkpoint import (
            check_state_dict_matches,
            extract_state_dict,
            safe_torch_load,
        )
        if checkpoint is None:
            raise ValueError(f'{path}: a checkpoint is required for a {cfg.model.get("type")} '
                             'config (only a RetrievalSegmentor config may run without one)')
        state = extract_state_dict(safe_torch_load(checkpoint), checkpoint)  # fails fast
        model = MODELS.build(cfg.model)
        # no init_weights(): every tensor comes from the checkpoint (checked below)
        check_state_dict_matches(model, state, checkpoint)
        model.load_state_dict(state, strict=True)
        return model

    @staticmethod
    def _build_onnx(cfg: Config, path: str, onnx_file: str,
                    classes: Optional[Sequence[str]]) -> torch.nn.Module:
        """An onnxruntime segmentor whose metadata must match the config (key named if not)."""
        from ..deploy.onnx_backend import OnnxSegmentor, check_onnx_matches_config
        if cfg.model.get('type') != 'MultiLabelEncoderDecoder':
            raise ValueError(f'{path}: an ONNX model needs a MultiLabelEncoderDecoder config, got '
                             f'model.type={cfg.model.get("type")!r}')
        model = OnnxSegmentor(onnx_file)
        pre = cfg.model.data_preprocessor
        thresholds = check_thresholds(cfg.model.get('threshold', 0.5), model.num_classes)
        check_onnx_matches_config(model.meta, onnx_file, path, classes or model.class_names,
                                  thresholds, pre.mean, pre.std)
        return model

    @staticmethod
    def _build_retrieval(path: str, checkpoint: Optional[str], cfg_options: Optional[dict],
                         device: str, progress: bool) -> Tuple[torch.nn.Module, Config]:
        """Build a retrieval segmentor and fill its memory (loaded, or built once here)."""
        from .retrieval_memory import build_memory, init_retrieval_model, memory_dataloader_cfg
        model, cfg = init_retrieval_model(path, checkpoint, cfg_options, device)
        hooks = [h for h in cfg.get('custom_hooks') or []
                 if h.get('type') == 'RetrievalMemoryHook']
        if not hooks:
            raise KeyError(f'{path}: a RetrievalSegmentor config needs a custom_hooks entry '
                           'RetrievalMemoryHook (load_from a saved memory, or a dataloader of '
                           'labelled images to build it from)')
        load_from = hooks[0].get('load_from')
        if load_from:
            if not osp.isdir(load_from):
                raise FileNotFoundError(f'{path}: RetrievalMemoryHook.load_from: no memory '
                                        f'directory {load_from}')
            model.load_memory(load_from)
        else:
            build_memory(model, memory_dataloader_cfg(cfg), progress=progress)
        return model, cfg

    def normaliser(self) -> Tuple[Optional[List[float]], Optional[List[float]]]:
        """The Z-score ``(mean, std)`` of ``model.data_preprocessor`` (None where unset)."""
        pre = self.cfg.model.get('data_preprocessor') or {}
        mean, std = pre.get('mean'), pre.get('std')
        return (None if mean is None else [float(v) for v in mean],
                None if std is None else [float(v) for v in std])

    def _class_names(self, names: Optional[Sequence[str]]) -> Tuple[str, ...]:
        names = names or getattr(getattr(self.model, 'decode_head', None), 'class_names', None)
        if not names:
            names = AOI_CLASSES if self.num_classes == len(AOI_CLASSES) else [
                f'class_{c}' for c in range(self.num_classes)]
        return tuple(str(n) for n in names)

    def palette(self) -> List[List[int]]:
        """An RGB colour per class (the AOI palette, then evenly spaced hues)."""
        colours = [list(c) for c in AOI_PALETTE][:self.num_classes]
        for c in range(len(colours), self.num_classes):
            hue = np.uint8([[[int(180 * c / self.num_classes), 255, 255]]])
            colours.append([int(v) for v in cv2.cvtColor(hue, cv2.COLOR_HSV2RGB)[0, 0]])
        return colours

    def _divisor(self) -> int:
        """Input sizes must be multiples of this (size divisor, patch, backbone stride)."""
        return model_divisor(self.model)

    @staticmethod
    def config_crop(cfg: Config) -> Tuple[int, int]:
        """The config's crop: ``crop_size``, else the training crop, else PadCenterCrop's."""
        def hw(value) -> Tuple[int, int]:
            return (int(value), int(value)) if isinstance(value, int) else tuple(
                int(v) for v in value)

        if cfg.get('crop_size') is not None:
            return hw(cfg.crop_size)
        for split, key, kind in (('train_dataloader', 'crop_size', None),
                                 ('test_dataloader', 'size', 'PadCenterCrop')):
            loader = cfg.get(split) or {}
            for t in (loader.get('dataset') or {}).get('pipeline') or []:
                if key in t and (kind is None or t.get('type') == kind):
                    return hw(t[key])
        return (512, 512)

    def _configure_slide(self, cfg: Config) -> None:
        """Set sliding-window inference on the model unless the config already does."""
        test_cfg = dict(getattr(self.model, 'test_cfg', None) or {})
        if test_cfg.get('mode') == 'slide':
            self.crop_size = tuple(test_cfg['crop_size'])
            self.stride = tuple(test_cfg['stride'])
            return
        d = self.divisor
        self.crop_size = tuple(-(-c // d) * d for c in self.config_crop(cfg))
        fixed = getattr(self.model, 'fixed_size', None)
        if fixed is not None and self.crop_size != tuple(fixed):
            raise ValueError(f'{self.model.path}: exported for fixed {fixed[0]}x{fixed[1]} '
                             f'inputs, but the config slides {self.crop_size[0]}x'
                             f'{self.crop_size[1]} windows (set crop_size={tuple(fixed)})')
        self.stride = tuple(max(1, -(-2 * c // 3)) for c in self.crop_size)
        test_cfg.update(mode='slide', crop_size=self.crop_size, stride=self.stride)
        self.model.test_cfg = ConfigDict(test_cfg)

    # ------------------------------------------------------------------ inputs
    def collect_inputs(self, inputs: InputsType, strict: bool = True,
                       skipped: Optional[List[Dict[str, str]]] = None
                       ) -> Tuple[List[InferenceItem], List[Dict[str, str]]]:
        """Turn ``inputs`` into ``(stem, source)`` items: see :func:`collect_inputs`."""
        return collect_inputs(inputs, strict, skipped)

    @staticmethod
    def load_image(item: InferenceItem,
                   notes: Optional[List[Dict[str, Any]]] = None) -> np.ndarray:
        """The (H, W, 2) image of an item: see :func:`load_image`."""
        return load_image(item, notes)

    # ------------------------------------------------------------------ model call
    def forward_scores(self, batch: torch.Tensor) -> torch.Tensor:
        """THE model call: raw padded images (N, 2, H, W) -> scores (N, C, H, W).

        Normalises with the model's data preprocessor and runs its
        ``inference`` (sliding window as configured). An ONNX model
        (``checkpoint='*.onnx'``) runs the same sliding window on raw pixels
        (its graph normalises) with onnxruntime instead.
        """
        if self.onnx:
            return self.model.forward_scores(batch)
        data = self.model.data_preprocessor(dict(inputs=list(batch.to(self.device))), False)
        hw = tuple(batch.shape[-2:])
        metas = [dict(ori_shape=hw, img_shape=hw, pad_shape=hw, padding_size=[0, 0, 0, 0])
                 for _ in range(batch.shape[0])]
        with torch.no_grad():
            return self.model.inference(data['inputs'], metas).float()

    def _scores_of_view(self, images: np.ndarray) -> torch.Tensor:
        """Scores (N, C, H, W) of same-size raw images (N, H, W, 2): pad, run, crop back."""
        height, width = images.shape[1:3]
        d = self.divisor
        pad_h, pad_w = (-height) % d, (-width) % d
        batch = torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2)
        batch = torch.nn.functional.pad(batch, (0, pad_w, 0, pad_h), value=0.0)
        return self.forward_scores(batch)[:, :, :height, :width].cpu()

    def predict_scores(self, images: np.ndarray) -> torch.Tensor:
        """Scores (N, C, H, W) of same-size images (N, H, W, 2), with the TTA views if set."""
        scores = self._scores_of_view(images)
        if self.tta:
            h_flip = self._scores_of_view(images[:, :, ::-1]).flip(-1)
            v_flip = self._scores_of_view(images[:, ::-1]).flip(-2)
            scores = (scores + h_flip + v_flip) / 3.0
        return scores

    # ------------------------------------------------------------------ running
    def _run(self, batch: List[Tuple[InferenceItem, np.ndarray]]) -> List[AOIResult]:
        results: List[Optional[AOIResult]] = [None] * len(batch)
        by_size: Dict[Tuple[int, int], List[int]] = {}
        for i, (_, image) in enumerate(batch):
            by_size.setdefault(image.shape[:2], []).append(i)
        for idx in by_size.values():  # one forward per size: no padding to a neighbour
            scores = self.predict_scores(np.stack([batch[i][1] for i in idx]))
            masks = threshold_scores(scores, self.thresholds, strict=self.strict)
            for j, i in enumerate(idx):
                (stem, source), image = batch[i]
                results[i] = AOIResult(
                    stem=stem, masks=np.ascontiguousarray(masks[j].permute(1, 2, 0).numpy()),
                    probabilities=scores[j].numpy().astype(np.float32),
                    class_names=self.class_names, image=image,
                    source=None if isinstance(source, np.ndarray) else tuple(source))
        return results

    def iter_results(self,
                     items: Sequence[InferenceItem],
                     batch_size: int = 1,
                     progress: bool = True,
                     failures: Optional[List[Dict[str, str]]] = None,
                     notes: Optional[List[Dict[str, Any]]] = None) -> Iterator[AOIResult]:
        """Yield the result of every item, in order, ``batch_size`` images at a time.

        Warns (:class:`InferenceWarning`) of a colour buffer (its first
        channel is kept) and, once per call, of values above 255 while the
        model's Z-score is in 0-255 units (:func:`range_warning`).

        Args:
            items: From :meth:`collect_inputs`.
            batch_size (int): Images read and scored together (images of one
                size share a forward pass). Defaults to 1.
            progress (bool): tqdm progress bar. Defaults to True.
            failures (list, optional): When given, an item that cannot be
                read is appended as ``{'file', 'stem', 'reason'}`` and
                skipped; when None, its error is raised.
            notes (list, optional): When given, every warning is also
                appended as ``{'file', 'stem', 'warning'}``.
        """
        from tqdm import tqdm
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        bar = tqdm(total=len(items), desc='inference', unit='img', disable=not progress)
        pending: List[Tuple[InferenceItem, np.ndarray]] = []
        mean, std = self.normaliser()
        range_note: Dict[str, Any] = {}  # this call's 16-bit warning, given once
        try:
            for n, item in enumerate(items):
                try:
                    pending.append((item, self.load_image(item, notes)))
                except AOIDataError as err:
                    if failures is None:
                        raise
                    failures.append(dict(file=culprit(item, err), stem=item[0],
                                         reason=str(err)))
                    bar.update(1)
                else:
                    note_range(range_note, item, range_warning(pending[-1][1], mean, std),
                                notes)
                if pending and (len(pending) == batch_size or n == len(items) - 1):
                    yield from self._run(pending)
                    bar.update(len(pending))
                    pending = []
        finally:
            bar.close()

    def __call__(self, inputs: InputsType, batch_size: int = 1,
                 progress: bool = True) -> List[AOIResult]:
        """Segment ``inputs`` (see :meth:`collect_inputs`); any bad input raises.

        Returns:
            list[AOIResult]: One result per image, in input order (a folder's
            pairs sorted by relative stem).
        """
        items, _ = self.collect_inputs(inputs, strict=True)
        return list(self.iter_results(items, batch_size, progress))
