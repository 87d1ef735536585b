"""Segment unlabelled 2-channel images: bit-mask PNGs, overlays, areas.csv, report.json.

Example::

    # CHECKPOINT: a file, or the work dir (its last_checkpoint names the final iter_N.pth)
    python tools/infer.py configs/fastervit0_upernet_aoi_cpu.py work_dirs/fv0_cpu \
        /data/new_lot --out predictions/new_lot --tta --thresholds 0.5,0.4,0.4,0.5
    # a retrieval config whose memory is saved (or built from its labelled images)
    python tools/infer.py configs/retrieval/retrieval-patch-sim_vit-tiny_aoi-512.py ssl.pth \
        /data/new_lot --out preds --cfg-options custom_hooks.0.load_from=memories/vit-tiny
"""
import argparse
import os.path as osp
import sys
import warnings
from typing import Any, List, Optional

from mmengine.config import DictAction

EPILOG = """outputs (all written atomically), for every image <stem> (relative to INPUT):
  OUT/masks/<stem>.png     uint8 bit mask: bit c set <=> the pixel belongs to class c
  OUT/overlays/<stem>.png  the prediction drawn over the false-colour composite
  OUT/areas.csv            stem, height, width, per class <name>_pixels and <name>_share
  OUT/report.json          settings, succeeded stems, failed [{file, reason}], skipped
                           [{file, reason}] (sub-folders named masks/labels/lbl... are not
                           searched), warnings [{file, stem, warning}] (a colour buffer;
                           16-bit values for a model normalised in 0-255 units: once)
an unpaired, unreadable or corrupt file is listed in report.json and skipped.
An OUT holding a previous run's outputs is refused unless --overwrite, which removes only
the files that run wrote (those its report.json / areas.csv list).

exit status: 0 when every image was segmented, 1 when any image failed (see report.json),
2 when nothing was done: a usage, config, checkpoint, INPUT or OUT error (one line
'infer: error: ...'; --debug shows the traceback)."""


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
    """The command line (argparse exits with status 2 on a malformed one)."""
    parser = argparse.ArgumentParser(
        description='Segment unlabelled buffer pairs (aoissl_mm)', epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='segmentor config (fine-tuned or retrieval)')
    parser.add_argument('checkpoint', help="checkpoint file (read weights-only), a work dir (the "
                        "file its last_checkpoint names), an exported .onnx (tools/export_onnx.py"
                        "; run with onnxruntime), or 'none' for a retrieval config whose "
                        'backbone needs none')
    parser.add_argument('input', help='folder of <stem>_buffer0/_buffer1 images (any depth) or '
                        'one buffer file')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--overwrite', action='store_true',
                        help="replace a previous run's outputs in --out (only its own files)")
    parser.add_argument('--tta', action='store_true',
                        help='average identity, h-flip and v-flip probabilities')
    parser.add_argument('--thresholds', type=parse_thresholds,
                        help="per-class thresholds overriding the config's, e.g. 0.5,0.4,0.4,0.5")
    parser.add_argument('--device', default=None,
                        help='device, e.g. cpu or cuda:0 (default: cuda if available, else cpu)')
    parser.add_argument('--batch-size', type=int, default=1, help='images per forward pass')
    parser.add_argument('--no-overlay', action='store_true', help='do not write overlays')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (keys are checked)')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error instead of one line')
    return parser.parse_args(argv)


def _message(err: BaseException) -> str:
    """One line: a KeyError's text without its quotes, newlines folded."""
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return ' '.join(str(text).split()) or type(err).__name__


def check_early(args: argparse.Namespace) -> None:
    """What can be checked before the model is built: INPUT, OUT, batch size, thresholds.

    Raises:
        FileNotFoundError, FileExistsError, NotADirectoryError, ValueError,
        KeyError: Naming the argument and what was expected.
    """
    from aoissl_mm.apis.inference_writer import prepare_output_folder
    from aoissl_mm.models.utils.multilabel_prediction import check_thresholds
    from aoissl_mm.utils.runner_setup import check_dataset_classes, load_config
    if not osp.exists(args.input):
        raise FileNotFoundError(f'INPUT {args.input}: no such folder or file (expected a '
                                'folder of <stem>_buffer0/_buffer1 images, or one buffer file)')
    if args.batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {args.batch_size}')
    prepare_output_folder(args.out, args.overwrite, dry_run=True)
    if args.thresholds is not None:  # before a slow model build (or retrieval memory)
        cfg = load_config(args.config, args.cfg_options)
        classes = check_dataset_classes(cfg)
        owner = cfg.model.get('decode_head') or cfg.model
        num_classes = len(classes) if classes else owner.get('num_classes')
        if num_classes:
            check_thresholds(args.thresholds, int(num_classes), '--thresholds')


def _show_warning(default: Any):
    """``warnings.showwarning`` printing the inferencer's warnings as ``infer: warning:``."""
    from aoissl_mm.apis.inference_inputs import InferenceWarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, InferenceWarning):
            print(f'infer: warning: {message}', file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    return show


def build(args: argparse.Namespace) -> Any:
    """The early checks, then the :class:`AOIInferencer` (config, checkpoint, memory)."""
    from aoissl_mm.apis import AOIInferencer
    check_early(args)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    return AOIInferencer(args.config, checkpoint, device=args.device,
                         thresholds=args.thresholds, tta=args.tta,
                         cfg_options=args.cfg_options, progress=not args.no_progress)


def summarise(report: dict, out: str) -> int:
    """Print what was done (failures and skipped folders on stderr); the exit status."""
    failed, skipped, notes = report['failed'], report['skipped'], report['warnings']
    counts = [f'{len(failed)} failed'] + [f'{len(v)} {k}' for k, v in (
        ('skipped', skipped), ('warning(s)', notes)) if v]
    print(f"segmented {len(report['succeeded'])} image(s) into {out}; " + ', '.join(counts)
          + (' (see report.json)' if failed or skipped or notes else ''))
    for entry in failed:
        print(f"  failed: {entry['file']}: {entry['reason']}", file=sys.stderr)
    for entry in skipped:
        print(f"  skipped: {entry['file']}: {entry['reason']}", file=sys.stderr)
    return 1 if failed else 0


def segment(args: argparse.Namespace) -> int:
    """Build, run, write, summarise; a usage error prints one line and gives 2."""
    from aoissl_mm.apis.inference_writer import write_inference_outputs
    from aoissl_mm.datasets.io import AOIDataError
    expected: tuple = (OSError, ValueError, KeyError, RuntimeError)  # of the setup
    try:
        inferencer = build(args)
        # from here on, only listing INPUT and preparing OUT fail as usage errors
        expected = (AOIDataError, FileExistsError, NotADirectoryError)
        report = write_inference_outputs(
            inferencer, args.input, args.out, overlay=not args.no_overlay,
            batch_size=args.batch_size, progress=not args.no_progress,
            overwrite=args.overwrite,
            extra=dict(config=args.config, checkpoint=args.checkpoint, input=args.input))
    except Exception as err:
        if args.debug or not isinstance(err, expected):
            raise
        print(f'infer: error: {_message(err)}', file=sys.stderr)
        return 2
    return summarise(report, args.out)


def main(argv: Optional[List[str]] = None) -> int:
    """Exit status 0 (all segmented), 1 (an image failed) or 2 (nothing done: see EPILOG).

    Errors of the arguments, config, checkpoint, INPUT or OUT are one line
    ``infer: error: ...`` (status 2); any other exception (a bug) and, with
    ``--debug``, every error keeps its traceback. The inferencer's warnings
    print as ``infer: warning: ...`` (and are listed in report.json).
    """
    args = parse_args(argv)
    from aoissl_mm.apis.inference_inputs import InferenceWarning
    with warnings.catch_warnings():  # restores the filters and showwarning afterwards
        warnings.simplefilter('always', InferenceWarning)  # every file's, in every run
        warnings.showwarning = _show_warning(warnings.showwarning)
        return segment(args)


if __name__ == '__main__':
    sys.exit(main())
