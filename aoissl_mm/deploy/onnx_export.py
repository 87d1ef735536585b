"""Export a fine-tuned ``MultiLabelEncoderDecoder`` to one ONNX file, preprocessing included.

The graph (:class:`~aoissl_mm.deploy.onnx_graph.OnnxExportWrapper`) takes raw
float32 pixels ``pixels`` (N, 2, H, W) in the units :class:`LoadAOIImage`
gives (0-255 for 8-bit images; 16-bit values unchanged) with H, W multiples
of ``size_divisor``, and returns ``probabilities`` (N, C, H, W), per-class
sigmoid probabilities. Thresholds are not applied in the graph: they are
metadata (``metadata_props``), applied by the consumer as ``prob >= t``.

Metadata (every value a string; lists and numbers JSON-encoded):
``classes``, ``thresholds``, ``mean``, ``std``, ``crop`` ([h, w]: the window
the model was exported at / slides with), ``size_divisor``, ``fixed_size``
(``true`` when only ``crop`` works), ``config``, ``checkpoint_sha256``,
``threshold_rule`` (``>=``), ``input``, ``output``, ``exporter``, ``opset``,
``torch`` and, when a dynamic export had to fall back, ``dynamic_failure``.

Dynamic H/W are verified, not assumed: the file is run with onnxruntime at
the crop and at a second size and compared with PyTorch; a dynamic export
that fails or differs is redone at the fixed crop (``fixed_size=true``).
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
import warnings
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from .onnx_graph import OnnxExportWrapper, make_exportable

#: max |onnxruntime - PyTorch| probability accepted when an export is verified
VERIFY_ATOL = 1e-4
INPUT_NAME, OUTPUT_NAME = 'pixels', 'probabilities'
META_KEYS = ('classes', 'thresholds', 'mean', 'std', 'crop', 'size_divisor', 'fixed_size',
             'config', 'checkpoint_sha256')


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message ('' for an empty message)."""
    lines = str(err).splitlines()
    return lines[0] if lines else ''


def file_sha256(path: str) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def build_checked_segmentor(config: str, checkpoint: str,
                            cfg_options: Optional[dict] = None):
    """Config, classes and the segmentor with ``checkpoint`` loaded weights-only and strictly.

    Raises:
        TypeError: The config's model is not a ``MultiLabelEncoderDecoder``.
    """
    from mmengine.registry import init_default_scope

    from ..apis.inferencer import AOIInferencer
    from ..utils.runner_setup import check_dataset_classes, load_config
    cfg = load_config(config, cfg_options)
    if cfg.model.get('type') != 'MultiLabelEncoderDecoder':
        raise TypeError(f'{config}: ONNX export supports MultiLabelEncoderDecoder configs, got '
                        f'model.type={cfg.model.get("type")!r}')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    classes = check_dataset_classes(cfg, fill_class_names=True)
    model = AOIInferencer._build_segmentor(cfg, config, checkpoint).eval()
    return cfg, classes, model


def _export_to(wrapper: torch.nn.Module, example: torch.Tensor, path: str, opset: int,
               dynamic: bool, exporter: str) -> None:
    """Write the graph to ``path`` (plus ``path + '.data'`` when the dynamo path needs it)."""
    if exporter == 'dynamo':
        from torch.export import Dim
        shapes = {0: Dim('batch')}
        if dynamic:
            shapes.update({2: Dim.AUTO, 3: Dim.AUTO})
        program = torch.onnx.export(wrapper, (example,), dynamo=True, opset_version=opset,
                                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes=(shapes,), verbose=False)
        # one file below protobuf's 2 GB limit; above it the weights go to path + '.data'
        size = sum(p.numel() * p.element_size() for p in wrapper.parameters())
        program.save(path, external_data=size >= (1 << 31) - (1 << 26))
    elif exporter == 'torchscript':
        axes = {0: 'batch', 2: 'height', 3: 'width'} if dynamic else {0: 'batch'}
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.export(wrapper, (example,), path, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes})
    else:
        raise ValueError(f"exporter must be 'dynamo' or 'torchscript', got {exporter!r}")


def _set_metadata(path: str, meta: Dict[str, str]) -> None:
    """Store ``meta`` as ``metadata_props`` (external weights stay where they are)."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)


def _verify(path: str, wrapper: torch.nn.Module,
            sizes: Sequence[Tuple[int, int]]) -> Optional[str]:
    """None when onnxruntime matches PyTorch at every size, else why not."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    gen = torch.Generator().manual_seed(0)
    for h, w in sizes:
        x = torch.randint(0, 256, (1, 2, h, w), generator=gen).float()
        with torch.no_grad():
            ref = wrapper(x).numpy()
        try:
            got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        except Exception as err:  # onnxruntime raises its own exception types
            return f'{h}x{w}: onnxruntime failed: {_first_line(err)}'
        if got.shape != ref.shape:
            return f'{h}x{w}: output shape {got.shape}, PyTorch {ref.shape}'
        diff = float(np.abs(got - ref).max())
        if not diff <= VERIFY_ATOL:
            return f'{h}x{w}: max |onnxruntime - PyTorch| = {diff:.3g} > {VERIFY_ATOL}'
    return None


def export_onnx(config: str,
                checkpoint: str,
                out: str = 'model.onnx',
                crop: Optional[Sequence[int]] = None,
                opset: int = 18,
                dynamic: bool = True,
                exporter: str = 'dynamo',
                cfg_options: Optional[dict] = None) -> Dict[str, str]:
    """Export ``config`` + ``checkpoint`` to ``out`` atomically and verify it.

    Args:
        config (str): A ``MultiLabelEncoderDecoder`` config.
        checkpoint (str): Its weights (read weights-only; keys must match).
        out (str): The ``.onnx`` file. Written through a temporary folder
            next to it and renamed (a ``.data`` weights file, needed only
            above 2 GB, is renamed first and must stay next to it).
        crop (Sequence[int], optional): Export window (h, w), rounded up to
            the size divisor; defaults to the config's crop (as the
            inferencer's sliding window).
        opset (int): ONNX opset. Defaults to 18.
        dynamic (bool): Dynamic height/width (verified at a second size;
            falls back to the fixed crop when that fails). The batch axis
            is always dynamic. Defaults to True.
        exporter (str): ``'dynamo'`` (torch's default, needs onnxscript) or
            ``'torchscript'`` (the legacy tracer; much faster to export).
        cfg_options (dict, optional): Config overrides.

    Returns:
        dict[str, str]: The metadata written.

    Raises:
        RuntimeError: The fixed-size export does not match PyTorch either.
    """
    from ..apis.inferencer import AOIInferencer, model_divisor
    cfg, classes, model = build_checked_segmentor(config, checkpoint, cfg_options)
    pre = cfg.model.data_preprocessor
    divisor = model_divisor(model)
    crop_hw = tuple(int(c) for c in (crop if crop is not None else
                                     AOIInferencer.config_crop(cfg)))
    if len(crop_hw) == 1:
        crop_hw = crop_hw * 2
    crop_hw = tuple(-(-c // divisor) * divisor for c in crop_hw[:2])
    wrapper = OnnxExportWrapper(make_exportable(model), pre.mean, pre.std).eval()
    meta = dict(
        classes=json.dumps(list(classes or [f'class_{c}' for c in range(model.num_classes)])),
        thresholds=json.dumps(list(model.thresholds)), mean=json.dumps(list(pre.mean)),
        std=json.dumps(list(pre.std)), crop=json.dumps(list(crop_hw)),
        size_divisor=str(divisor), config=osp.basename(str(config)),
        checkpoint_sha256=file_sha256(checkpoint), threshold_rule='>=',
        input=f'{INPUT_NAME}: float32 (N, {len(pre.mean)}, H, W) raw pixels as LoadAOIImage '
        'reads them (0-255 for 8-bit, unchanged 16-bit values), H and W multiples of '
        'size_divisor (pad bottom/right with 0)',
        output=f'{OUTPUT_NAME}: float32 (N, C, H, W) per-class sigmoid probabilities; '
        'mask_c = probabilities_c >= thresholds[c]',
        exporter=exporter, opset=str(opset), torch=torch.__version__)
    example = torch.zeros(1, len(pre.mean), *crop_hw)
    second = (crop_hw[0] + divisor, crop_hw[1] + 2 * divisor)
    out = osp.abspath(out)
    os.makedirs(osp.dirname(out), exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.', dir=osp.dirname(out))
    try:
        tmp = osp.join(tmp_dir, osp.basename(out))
        failure = None
        if dynamic:
            try:
                _export_to(wrapper, example, tmp, opset, True, exporter)
                failure = _verify(tmp, wrapper, [crop_hw, second])
            except Exception as err:  # any exporter error: fall back to the fixed crop
                failure = f'export failed: {type(err).__name__}: {_first_line(err)}'
            if failure:
                warnings.warn(f'{config}: dynamic-shape ONNX export failed ({failure}); '
                              f'exporting the fixed crop {crop_hw}')
                meta['dynamic_failure'] = failure
                for name in os.listdir(tmp_dir):
                    os.remove(osp.join(tmp_dir, name))
        if not dynamic or failure:
            try:
                _export_to(wrapper, example, tmp, opset, False, exporter)
            except Exception as err:
                hint = (" (torch's legacy tracer cannot export this model, e.g. ViT-Tiny's "
                        "bicubic position-table resize: use exporter='dynamo', the default, "
                        '`--exporter dynamo`)' if exporter == 'torchscript' else '')
                raise RuntimeError(f'{config}: ONNX export of the fixed crop {crop_hw} with '
                                   f'the {exporter} exporter failed: {type(err).__name__}: '
                                   f'{_first_line(err)}{hint}') from err
            bad = _verify(tmp, wrapper, [crop_hw])
            if bad:
                raise RuntimeError(f'{config}: the ONNX export does not match PyTorch: {bad}')
        meta['fixed_size'] = 'false' if dynamic and not failure else 'true'
        _set_metadata(tmp, meta)
        names = sorted(os.listdir(tmp_dir), key=lambda n: n == osp.basename(out))
        for name in names:  # external data first, the model file last
            os.replace(osp.join(tmp_dir, name), osp.join(osp.dirname(out), name))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return meta
