"""Segment unlabelled 2-channel images: bit-mask PNGs, overlays, areas.csv, report.json.

Example::

    python tools/infer.py configs/fastervit0_upernet_aoi_cpu.py work_dirs/fv0_cpu/iter_773.pth \
        /data/new_lot --out predictions/new_lot --tta --thresholds 0.5,0.4,0.4,0.5
    # a retrieval config whose memory is saved (or built from its labelled images)
    python tools/infer.py configs/retrieval/retrieval-patch-sim_vit-tiny_aoi-512.py ssl.pth \
        /data/new_lot --out preds --cfg-options custom_hooks.0.load_from=memories/vit-tiny
"""
import argparse
import sys
from typing import List, Optional

from mmengine.config import DictAction

EPILOG = """outputs (all written atomically), for every image <stem> (relative to INPUT):
  OUT/masks/<stem>.png     uint8 bit mask: bit c set <=> the pixel belongs to class c
  OUT/overlays/<stem>.png  the prediction drawn over the false-colour composite
  OUT/areas.csv            stem, height, width, per class <name>_pixels and <name>_share
  OUT/report.json          settings, succeeded stems, failed [{file, reason}]
an unpaired, unreadable or corrupt file is listed in report.json and skipped.

exit status: 0 when every image was segmented, 1 when any input failed (see report.json)
or nothing could be done (e.g. INPUT does not exist)."""


def parse_thresholds(text: Optional[str]) -> Optional[List[float]]:
    """``'0.5,0.4'`` -> [0.5, 0.4]; None stays None."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(',') if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'--thresholds: expected comma-separated numbers, got '
                                         f'{text!r}') from err


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Segment unlabelled buffer pairs (aoissl_mm)', epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='segmentor config (fine-tuned or retrieval)')
    parser.add_argument('checkpoint', help="checkpoint file (read weights-only), an exported "
                        ".onnx (tools/export_onnx.py; run with onnxruntime), or 'none' for "
                        'a retrieval config whose backbone needs none')
    parser.add_argument('input', help='folder of <stem>_buffer0/_buffer1 images (any depth) or '
                        'one buffer file')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--tta', action='store_true',
                        help='average identity, h-flip and v-flip probabilities')
    parser.add_argument('--thresholds', type=parse_thresholds,
                        help="per-class thresholds overriding the config's, e.g. 0.5,0.4,0.4,0.5")
    parser.add_argument('--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument('--batch-size', type=int, default=1, help='images per forward pass')
    parser.add_argument('--no-overlay', action='store_true', help='do not write overlays')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (keys are checked)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from aoissl_mm.apis import AOIInferencer
    from aoissl_mm.apis.inference_writer import write_inference_outputs
    from aoissl_mm.datasets.io import AOIDataError
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    inferencer = AOIInferencer(args.config, checkpoint, device=args.device,
                               thresholds=args.thresholds, tta=args.tta,
                               cfg_options=args.cfg_options, progress=not args.no_progress)
    try:
        report = write_inference_outputs(
            inferencer, args.input, args.out, overlay=not args.no_overlay,
            batch_size=args.batch_size, progress=not args.no_progress,
            extra=dict(config=args.config, checkpoint=args.checkpoint, input=args.input))
    except AOIDataError as err:
        print(f'infer: {err}', file=sys.stderr)
        return 1
    failed = report['failed']
    print(f"segmented {len(report['succeeded'])} image(s) into {args.out}; {len(failed)} "
          f'failed' + (' (see report.json)' if failed else ''))
    for entry in failed:
        print(f"  failed: {entry['file']}: {entry['reason']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
