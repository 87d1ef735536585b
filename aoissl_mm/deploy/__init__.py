"""Deployment: ONNX export of fine-tuned segmentors and their onnxruntime backend.

onnx / onnxruntime / onnxscript are the ``onnx`` extra (``pip install -e ".[onnx]"``):
importing this package does not need them, using it does.
"""
from .onnx_backend import OnnxSegmentor, check_onnx_matches_config, read_onnx_metadata
from .onnx_export import VERIFY_ATOL, export_onnx, file_sha256
from .onnx_graph import ExportableAdaptiveMaxPool2d, OnnxExportWrapper, make_exportable

__all__ = [
    'ExportableAdaptiveMaxPool2d', 'OnnxExportWrapper', 'OnnxSegmentor', 'VERIFY_ATOL',
    'check_onnx_matches_config', 'export_onnx', 'file_sha256', 'make_exportable',
    'read_onnx_metadata'
]
