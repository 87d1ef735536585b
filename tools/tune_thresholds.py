"""Per-class thresholds of a fine-tuned segmentor that maximise each class's IoU on a labelled
split (one forward pass; every threshold of the grid scored from the same probabilities).

Example::

    python tools/tune_thresholds.py configs/fastervit0_upernet_aoi_cpu.py \
        work_dirs/fv0_cpu/iter_448.pth --out work_dirs/fv0_cpu/thresholds
    # then, on the test split (not the one tuned on):
    python tools/test.py configs/fastervit0_upernet_aoi_cpu.py work_dirs/fv0_cpu/iter_448.pth \
        --cfg-options "model.threshold=[0.7,0.8,0.9,0.5]"

Writes ``thresholds.csv`` (IoU per class and threshold), ``best.json`` (the chosen thresholds,
the ``--cfg-options`` and ``tools/infer.py --thresholds`` strings) and ``thresholds.png``.
"""
import argparse

from mmengine.config import DictAction


def main() -> None:
    parser = argparse.ArgumentParser(description='Tune per-class thresholds (aoissl_mm)')
    parser.add_argument('config', help='fine-tuned segmentor config')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--split', default='val', choices=['val', 'test'],
                        help='labelled split to tune on (default: val)')
    parser.add_argument('--grid', type=float, nargs='+', help='thresholds (default 0.05..0.95)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (keys are checked)')
    args = parser.parse_args()
    from aoissl_mm.apis import tune_thresholds
    result = tune_thresholds(args.config, args.checkpoint, args.out, args.split, args.grid,
                             args.cfg_options, args.device)
    print(result['table'])
    print(f"tools/test.py / train.py: --cfg-options \"{result['cfg_options']}\"")
    print(f"tools/infer.py: {result['infer_option']}")


if __name__ == '__main__':
    main()
