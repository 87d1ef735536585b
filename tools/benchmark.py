"""Crops/s of a segmentor's full inference path (forward + post-processing).

Example::

    python tools/benchmark.py configs/fastervit0_upernet_aoi.py --crop 512 --batch 4
    python tools/benchmark.py configs/vit-tiny_upernet_aoi.py ckpt.pth --json out.json
"""
import argparse
import os.path as osp


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark a segmentor (aoissl_mm)')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', default=None, help='optional weights')
    parser.add_argument('--crop', type=int, nargs='+', default=[512],
                        help='crop size: one value (square) or H W')
    parser.add_argument('--batch', type=int, default=4, help='crops per forward')
    parser.add_argument('--warmup', type=int, default=3, help='untimed iterations')
    parser.add_argument('--iters', type=int, default=10, help='timed iterations')
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda if present)')
    parser.add_argument('--no-amp', action='store_true', help='disable fp16 autocast on CUDA')
    parser.add_argument('--json', default=None,
                        help='output JSON (default: work_dirs/benchmark/<config>.json)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from aoissl_mm.utils import benchmark_segmentor, load_config, write_json
    cfg = load_config(args.config)
    crop = args.crop * 2 if len(args.crop) == 1 else args.crop[:2]
    res = benchmark_segmentor(cfg, args.checkpoint, crop, args.batch, args.warmup, args.iters,
                              args.device, False if args.no_amp else None)
    res['config'] = args.config
    from prettytable import PrettyTable
    table = PrettyTable(['config', 'device', 'amp', 'crop', 'batch', 'crops/s', 's/batch',
                         'peak MiB', 'params (M)'])
    table.add_row([osp.basename(args.config), res['device'], res['amp'],
                   'x'.join(map(str, res['crop_size'])), res['batch_size'],
                   f"{res['crops_per_s']:.2f}", f"{res['s_per_batch']:.3f}",
                   f"{res['peak_mem_mib']:.0f}", f"{res['params'] / 1e6:.2f}"])
    print(table)
    out = args.json or osp.join('work_dirs', 'benchmark',
                                osp.splitext(osp.basename(args.config))[0] + '.json')
    write_json(out, res)
    print(f'results written to {out}')


if __name__ == '__main__':
    main()
