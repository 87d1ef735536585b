"""Plot a run's learning curves (loss, LR, validation IoU per class) to a PNG.

Example::

    python tools/plot_curves.py work_dirs/fv0_cpu
"""
import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description='Plot learning curves (aoissl_mm)')
    parser.add_argument('work_dir', help='work dir of a run (or its scalars.json)')
    parser.add_argument('--out', default=None, help='output PNG')
    args = parser.parse_args()
    from aoissl_mm.utils.learning_curves import plot_learning_curves
    print(plot_learning_curves(args.work_dir, args.out))


if __name__ == '__main__':
    main()
