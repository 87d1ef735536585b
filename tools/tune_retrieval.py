"""Per-class k / threshold (/ beta) of a retrieval config by K-fold cross-validation (spec §8.4).

The config's memory images (the labelled training split) are split into folds; each fold is
labelled from a memory of the other folds, for every grid point; per class the point with the
best mean-over-folds IoU is kept. Writes ``results.csv``, ``best.json``, ``best_config.py`` and
``tuning.png`` to ``--out`` and prints a per-class table and the config snippet.

Examples::

    python tools/tune_retrieval.py configs/retrieval/retrieval-patch-sim_vit-tiny_aoi-512.py \
        work_dirs/mae_vit-tiny/iter_300.pth --out work_dirs/tune_vit-tiny --aggregation both
    # a smaller grid, another labelled root
    python tools/tune_retrieval.py CONFIG CKPT --out DIR --ks 2 10 30 --thresholds 0.5 0.2 \
        --data-root /data/new_device --split train
"""
import argparse

from mmengine.config import DictAction


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Cross-validated retrieval hyper-parameters '
                                     '(aoissl_mm)')
    parser.add_argument('config', help='retrieval config')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint holding the backbone (SSL, fine-tuned or bare)')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--folds', type=int, default=5, help='K of the K-fold split (5)')
    parser.add_argument('--aggregation', choices=['similarity', 'attention', 'both'],
                        help="aggregation(s) to search (default: the config's)")
    parser.add_argument('--ks', type=int, nargs='+', help='k grid (default: spec §8.4)')
    parser.add_argument('--betas', type=float, nargs='+', help='attention beta grid')
    parser.add_argument('--thresholds', type=float, nargs='+', help='threshold grid')
    parser.add_argument('--seed', type=int, default=42, help='KFold shuffle seed (42)')
    parser.add_argument('--chunk', type=int, help="queries at once (default: model.query_chunk)")
    parser.add_argument('--data-root', help="labelled images in the AOI layout (default: the "
                        "config's memory dataloader)")
    parser.add_argument('--split', help='split folder under images/ and labels/')
    parser.add_argument('--device', default='cpu', help='device for the backbone')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (keys are checked)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from aoissl_mm.apis.retrieval_tuning import tune_retrieval
    summary = tune_retrieval(args.config, args.checkpoint, args.out, folds=args.folds,
                             aggregation=args.aggregation, ks=args.ks, betas=args.betas,
                             thresholds=args.thresholds, data_root=args.data_root,
                             split=args.split, cfg_options=args.cfg_options, device=args.device,
                             seed=args.seed, chunk=args.chunk)
    print(summary['table'])
    for note in summary['notes']:
        print(f'note: {note}')
    print(summary['config_text'])
    print(f'wrote results.csv, best.json, best_config.py and tuning.png to {args.out}')


if __name__ == '__main__':
    main()
