"""Generate the embedded synthetic two-light AOI benchmark.

Example::

    python tools/make_synthetic_aoi.py data/synthetic_aoi --num-train 40 --seed 0

Writes ``images/``, ``labels/``, ``pretrain/`` and ``synthetic_aoi.json`` (see
:mod:`aoissl_mm.datasets.synthetic`) and prints the class pixel shares and
the class overlap statistics.
"""
import argparse
import sys
from typing import List, Optional

from aoissl_mm.datasets.metainfo import AOI_CLASSES
from aoissl_mm.datasets.synthetic import generate_synthetic_aoi


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (List[str], optional): Arguments; ``sys.argv[1:]`` if None.
    """
    p = argparse.ArgumentParser(description='Generate the synthetic wire-bonded device '
                                'benchmark (2-light images + multi-label bit-mask labels).')
    p.add_argument('out_root', help='folder to create')
    p.add_argument('--num-train', type=int, default=40)
    p.add_argument('--num-val', type=int, default=10)
    p.add_argument('--num-test', type=int, default=16)
    p.add_argument('--num-pretrain', type=int, default=60)
    p.add_argument('--num-families', type=int, default=6)
    p.add_argument('--size-min', type=int, default=384, help='smallest image side')
    p.add_argument('--size-max', type=int, default=1024, help='largest image side')
    p.add_argument('--single-device', action='store_true',
                   help='draw all splits from one device family')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--overwrite', action='store_true',
                   help='replace a non-empty existing OUT_ROOT')
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return p.parse_args(argv)


def format_report(manifest: dict) -> str:
    """Tables of class pixel shares per split and of class overlaps.

    Args:
        manifest (dict): The dictionary returned by ``generate_synthetic_aoi``.
    """
    names = manifest.get('classes', list(AOI_CLASSES))
    head = f'{"split":<10}{"images":>8}' + ''.join(f'{n:>9}' for n in names)
    lines = ['class share of labelled pixels (%):', head]
    rows = list(manifest['splits'].items()) + [('all', manifest['labelled'])]
    for split, st in rows:
        count = st.get('images', sum(manifest['splits'][s]['images']
                                     for s in manifest['splits']))
        lines.append(f'{split:<10}{count:>8}' +
                     ''.join(f'{100 * st["class_share"][n]:>9.2f}' for n in names))
    lab = manifest['labelled']
    lines += ['', 'share of a class\'s pixels also labelled as another class '
              '(%, all labelled splits; row lies on column):',
              f'{"":<10}' + ''.join(f'{n:>9}' for n in names) + f'{"any":>9}']
    for a in names:
        cells = ''.join(f'{"-":>9}' if a == b else f'{100 * lab["on"][a][b]:>9.2f}'
                        for b in names)
        lines.append(f'{a:<10}{cells}{100 * lab["on_any_other"][a]:>9.2f}')
    sizes = manifest['image_sizes']
    lines += ['', f'image size (H, W) from {sizes["min_hw"]} to {sizes["max_hw"]}; '
              f'{100 * sizes["black_border_share"]:.0f}% of images have a black border']
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point.

    Args:
        argv (List[str], optional): Arguments; ``sys.argv[1:]`` if None.
    """
    args = parse_args(argv)
    manifest = generate_synthetic_aoi(
        args.out_root, num_train=args.num_train, num_val=args.num_val,
        num_test=args.num_test, num_pretrain=args.num_pretrain,
        num_families=args.num_families, size_range=(args.size_min, args.size_max),
        single_device=args.single_device, seed=args.seed, progress=not args.no_progress,
        overwrite=args.overwrite)
    print(f'wrote {sum(manifest["counts"].values())} images to {args.out_root}')
    print(format_report(manifest))
    return 0


if __name__ == '__main__':
    sys.exit(main())
