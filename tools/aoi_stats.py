"""Per-buffer mean/std of a folder of AOI images, for the data preprocessor's Z-score.

Example::

    python tools/aoi_stats.py data/synthetic_aoi/pretrain --json stats.json
"""
import argparse
import json


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Compute per-buffer mean/std (aoissl_mm)')
    parser.add_argument('folder', help='folder of <stem>_buffer0/1 images (searched recursively)')
    parser.add_argument('--ignore-zero', action='store_true',
                        help='skip pixels that are black in both buffers')
    parser.add_argument('--max-images', type=int, default=None)
    parser.add_argument('--json', default=None, help='write the result to this JSON file')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from aoissl_mm.utils import compute_image_stats, write_json
    stats = compute_image_stats(args.folder, ignore_zero=args.ignore_zero,
                                max_images=args.max_images)
    print(json.dumps(stats, indent=2))
    print(f"data_preprocessor: mean={stats['mean']}, std={stats['std']}")
    if args.json:
        write_json(args.json, stats)


if __name__ == '__main__':
    main()
