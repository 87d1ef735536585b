"""Export a fine-tuned segmentor to ONNX: raw 2-channel pixels in, per-class probabilities out.

Example::

    python tools/export_onnx.py configs/fastervit0_upernet_aoi_cpu.py \
        work_dirs/fv0_cpu/iter_773.pth --out fv0.onnx --dynamic
    python tools/infer.py configs/fastervit0_upernet_aoi_cpu.py fv0.onnx /data/new_lot --out preds

The graph includes the config's Z-score; thresholds, classes, mean/std, crop and
size divisor are stored in the file's metadata (see aoissl_mm/deploy/onnx_export.py).
Needs the ``onnx`` extra: ``pip install -e ".[onnx]"``.
"""
import argparse
import json
import sys
from typing import List, Optional

from mmengine.config import DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a MultiLabelEncoderDecoder to ONNX '
                                     '(aoissl_mm)')
    parser.add_argument('config', help='fine-tuned segmentor config')
    parser.add_argument('checkpoint', help='its checkpoint (read weights-only)')
    parser.add_argument('--out', default='model.onnx', help='output .onnx file')
    parser.add_argument('--crop', type=int, nargs='+', default=None,
                        help="export window: one value (square) or H W (default: the config's "
                        'crop, the sliding window of tools/infer.py)')
    parser.add_argument('--opset', type=int, default=18, help='ONNX opset (default 18)')
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic height/width (verified at a second size; falls back to '
                        'the fixed crop, metadata fixed_size=true, when the model cannot)')
    parser.add_argument('--exporter', choices=['dynamo', 'torchscript'], default='dynamo',
                        help="torch's exporter: 'dynamo' (default, onnxscript) or the legacy "
                        "'torchscript' tracer (much faster to run)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (keys are checked)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if not args.out.lower().endswith('.onnx'):
        print(f'export_onnx: --out must end with .onnx, got {args.out}', file=sys.stderr)
        return 1
    from aoissl_mm.deploy import VERIFY_ATOL, export_onnx
    meta = export_onnx(args.config, args.checkpoint, args.out, crop=args.crop,
                       opset=args.opset, dynamic=args.dynamic, exporter=args.exporter,
                       cfg_options=args.cfg_options)
    crop = 'x'.join(str(c) for c in json.loads(meta['crop']))
    shape = (f'fixed {crop}' if meta['fixed_size'] == 'true' else
             f"dynamic H/W (multiples of {meta['size_divisor']}; crop {crop})")
    print(f"wrote {args.out}: {shape}, classes {meta['classes']}, thresholds "
          f"{meta['thresholds']}; verified against PyTorch (max abs diff <= {VERIFY_ATOL})")
    if 'dynamic_failure' in meta:
        print(f"  dynamic export fell back to the fixed crop: {meta['dynamic_failure']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
