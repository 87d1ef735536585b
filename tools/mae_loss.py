"""MAE reconstruction loss of checkpoints on held-out images, with the same crops and masks.

Tells a pretraining run that is still learning (the held-out loss falls from checkpoint to
checkpoint) from one that memorises its images (the training loss falls, the held-out one
does not). Example::

    python tools/train.py configs/selfsup/mae_vit-tiny_600it_aoi-256.py \
        --cfg-options default_hooks.checkpoint.interval=100 \
        default_hooks.checkpoint.max_keep_ckpts=-1
    python tools/mae_loss.py configs/selfsup/mae_vit-tiny_600it_aoi-256.py \
        work_dirs/mae_vit-tiny_600it_aoi-256/iter_*00.pth --data-root data/synthetic_aoi

Crops come from the config's training pipeline without augmentation; masks from the model's
own masking; both from ``--seed``. Prints ``checkpoint  loss`` rows; ``--out`` writes a CSV.
"""
import argparse
import re

from mmengine.config import DictAction


def _iteration(path: str) -> int:
    found = re.search(r'iter_(\d+)\.pth$', path)
    return int(found.group(1)) if found else -1


def main() -> None:
    parser = argparse.ArgumentParser(description='Held-out MAE loss of checkpoints (aoissl_mm)')
    parser.add_argument('config', help='MaskTokenMAE config')
    parser.add_argument('checkpoints', nargs='+', help='checkpoints (sorted by iteration)')
    parser.add_argument('--data-root', required=True,
                        help='root of images the run did not train on (e.g. data/synthetic_aoi)')
    parser.add_argument('--prefix', default='images/test',
                        help='folder under the root (default: images/test)')
    parser.add_argument('--crops', type=int, default=4, help='crops per image (default 4)')
    parser.add_argument('--batch', type=int, default=8, help='crops per forward pass')
    parser.add_argument('--seed', type=int, default=0, help='seed of the crops and masks')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', help='CSV file to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (keys are checked)')
    args = parser.parse_args()
    from aoissl_mm.apis import mae_heldout_loss, write_mae_loss_csv
    checkpoints = sorted(args.checkpoints, key=_iteration)
    results = mae_heldout_loss(args.config, checkpoints, args.data_root, args.prefix,
                               args.crops, args.batch, args.seed, args.cfg_options, args.device)
    for ckpt, loss in results.items():
        print(f'{ckpt}  {loss:.4f}')
    if args.out:
        write_mae_loss_csv(args.out, results)


if __name__ == '__main__':
    main()
