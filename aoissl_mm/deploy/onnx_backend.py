"""onnxruntime backend of :class:`~aoissl_mm.apis.AOIInferencer`: an exported ``.onnx`` file.

:class:`OnnxSegmentor` scores windows with an onnxruntime session and reuses
the package's ``'whole'`` / ``'slide'`` inference
(:class:`MultiLabelPredictorMixin`), so its sliding-window grid is exactly the
PyTorch segmentor's. Its inputs are RAW pixels: the Z-score is in the graph
(pointwise, so windowing raw or normalised pixels is the same).
"""
import json
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..models.segmentors.multilabel_predictor_mixin import MultiLabelPredictorMixin
from .onnx_export import INPUT_NAME, META_KEYS, OUTPUT_NAME

_JSON_KEYS = ('classes', 'thresholds', 'mean', 'std', 'crop')


def read_onnx_metadata(path: str) -> Dict[str, object]:
    """The ``metadata_props`` of an exported file, JSON values decoded.

    Raises:
        FileNotFoundError: No such file.
        ValueError: A key of :data:`META_KEYS` is missing or unreadable.
    """
    import onnx
    if not osp.isfile(path):
        raise FileNotFoundError(f'ONNX model not found: {path}')
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and friends
        raise ValueError(f'{path}: cannot read the ONNX model ({type(err).__name__}: '
                         f'{err})') from err
    meta: Dict[str, object] = {p.key: p.value for p in model.metadata_props}
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ValueError(f'{path}: not an aoissl_mm export: metadata_props lack {missing} '
                         '(export it with tools/export_onnx.py)')
    for key in _JSON_KEYS:
        try:
            meta[key] = json.loads(meta[key])
        except ValueError as err:
            raise ValueError(f'{path}: metadata {key!r} is not JSON: {meta[key]!r}') from err
    meta['size_divisor'] = int(meta['size_divisor'])
    meta['fixed_size'] = str(meta['fixed_size']).lower() == 'true'
    return meta


def check_onnx_matches_config(meta: Dict[str, object], path: str, config: str,
                              classes: Sequence[str], thresholds: Sequence[float],
                              mean: Sequence[float], std: Sequence[float]) -> None:
    """The file's classes / thresholds / mean / std must be the config's.

    Raises:
        ValueError: Naming the first key that differs, with both values.
    """
    expected = dict(classes=list(classes), thresholds=list(thresholds), mean=list(mean),
                    std=list(std))
    for key, want in expected.items():
        got = meta[key]
        same = isinstance(got, list) and len(got) == len(want) and all(
            g == w if key == 'classes' else
            isinstance(g, (int, float)) and math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-9)
            for g, w in zip(got, want))
        if not same:
            raise ValueError(f'{path}: ONNX metadata {key!r} = {got} does not match the config '
                             f'{config}: {want} (export the model with this config)')


class OnnxSegmentor(MultiLabelPredictorMixin, nn.Module):
    """An exported segmentor scored by onnxruntime, with the segmentor's inference API.

    Args:
        path (str): The ``.onnx`` file (its ``.data`` file, if any, next to it).
        providers (Sequence[str], optional): onnxruntime execution providers.
            Defaults to ``['CPUExecutionProvider']``.
        num_threads (int, optional): onnxruntime intra-op threads (default:
            onnxruntime's choice).

    Attributes:
        meta (dict): :func:`read_onnx_metadata`.
        num_classes, thresholds, test_cfg, align_corners, size_divisor,
        patch_size: As a ``MultiLabelEncoderDecoder``'s (``test_cfg`` is
            ``'whole'`` until the caller sets a sliding window).
    """

    def __init__(self, path: str, providers: Optional[Sequence[str]] = None,
                 num_threads: Optional[int] = None) -> None:
        import onnxruntime as ort
        super().__init__()
        self.path = str(path)
        self.meta = read_onnx_metadata(self.path)
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        self.session = ort.InferenceSession(self.path, options,
                                            providers=list(providers or ['CPUExecutionProvider']))
        self.class_names: Tuple[str, ...] = tuple(self.meta['classes'])
        self.num_classes = len(self.class_names)
        self.thresholds: Tuple[float, ...] = tuple(float(t) for t in self.meta['thresholds'])
        self.fixed_size: Optional[Tuple[int, int]] = (
            tuple(self.meta['crop']) if self.meta['fixed_size'] else None)
        self.size_divisor = self.patch_size = int(self.meta['size_divisor'])
        self.crop_size = tuple(int(c) for c in self.meta['crop'])
        self.data_preprocessor = None
        self.align_corners = False
        self.test_cfg = dict(mode='whole')

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """The graph on raw float32 pixels (N, 2, H, W) -> probabilities (N, C, H, W)."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(
            pixels, dtype=np.float32)})[0]

    def window_scores(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Probabilities of raw windows; a fixed-size model gets them padded with raw 0.

        Padding a window smaller than the fixed crop (an image smaller than
        the crop) is the only place this backend differs from PyTorch, which
        scores the small window as it is.
        """
        h, w = inputs.shape[-2:]
        x = inputs.detach().cpu().float()
        if self.fixed_size is not None and (h, w) != self.fixed_size:
            fh, fw = self.fixed_size
            if h > fh or w > fw:
                raise ValueError(f'{self.path}: a fixed-size {fh}x{fw} model got a {h}x{w} '
                                 'window (slide with crop_size <= the exported crop)')
            x = torch.nn.functional.pad(x, (0, fw - w, 0, fh - h), value=0.0)
        out = torch.from_numpy(self.run(x.numpy()))[:, :, :h, :w]
        return out.to(inputs.device)

    def forward_scores(self, pixels: Tensor) -> Tensor:
        """Raw padded images (N, 2, H, W) -> probabilities (N, C, H, W) (whole or slide)."""
        h, w = pixels.shape[-2:]
        metas = [dict(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w))
                 for _ in range(pixels.shape[0])]
        return self.inference(pixels.float(), metas).float()
