"""Crops/s of a segmentor's full inference path (forward + post-processing).

Example::

    python tools/benchmark.py configs/fastervit0_upernet_aoi.py --crop 512 --batch 4
    python tools/benchmark.py configs/vit-tiny_upernet_aoi.py ckpt.pth --json out.json
    # onnxruntime (tools/export_onnx.py) vs PyTorch on CPU, side by side
    python tools/benchmark.py configs/fastervit0_upernet_aoi.py ckpt.pth --onnx fv0.onnx \
        --device cpu

On a retrieval config (``model.type='RetrievalSegmentor'``) the memory of every
patch of the memory split is built first and more is measured on request
(:mod:`aoissl_mm.utils.retrieval_benchmark`)::

    python tools/benchmark.py configs/retrieval/retrieval-patch-sim_vit-tiny_aoi-512.py \
        --compare configs/vit-tiny_upernet_aoi.py --memory-size 1000000 --add-images 42
"""
import argparse
import os.path as osp

from mmengine.config import DictAction


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
    parser.add_argument('--checkpoint', dest='checkpoint_opt', default=None,
                        help='weights (same as the positional checkpoint)')
    parser.add_argument('--onnx', default=None,
                        help='an exported .onnx of this config: onnxruntime crops/s too')
    retrieval = parser.add_argument_group('retrieval configs (RetrievalSegmentor)')
    retrieval.add_argument('--compare', default=None, help='another config timed the same way')
    retrieval.add_argument('--compare-checkpoint', default=None, help='its weights')
    retrieval.add_argument('--memory-size', type=float, default=None,
                           help='exact vs IVF at this many entries (real + distractors)')
    retrieval.add_argument('--nlists', type=_ints, default=None,
                           help='IVF nlist sweep, e.g. 512,1024,2048 (default ~sqrt(N) x .5,1,2)')
    retrieval.add_argument('--nprobes', type=_ints, default=None,
                           help='nprobe sweep (default 1,2,4,...,64)')
    retrieval.add_argument('--min-recall', type=float, default=0.95,
                           help='chosen IVF: fastest with recall@k >= this')
    retrieval.add_argument('--distractor-noise', type=float, default=0.3,
                           help='norm of the noise added to a real key to make a distractor')
    retrieval.add_argument('--distractor-values', choices=['copy', 'empty'], default='copy',
                           help="distractor values: the source key's mask or an empty one")
    retrieval.add_argument('--fp16-keys', choices=['config', 'on', 'off'], default='config',
                           help='keys of the scaling memories (default: the config\'s)')
    retrieval.add_argument('--sweep-queries', type=int, default=4096,
                           help='query tokens of the nprobe sweep')
    retrieval.add_argument('--memory-sizes', type=_ints, default=None,
                           help='flat vs IVF on synthetic keys, e.g. 1e4,1e5,1e6')
    retrieval.add_argument('--add-images', type=int, default=None,
                           help='time adding this many labelled images to a saved memory')
    retrieval.add_argument('--add-data-root', default=None,
                           help='their AOI-layout root (default: freshly generated synthetic)')
    retrieval.add_argument('--add-split', default='train', help='their split folder')
    retrieval.add_argument('--add-threads', type=int, default=2, help='CPU threads for adding')
    retrieval.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                           help='config overrides, key=value')
    retrieval.add_argument('--no-progress', action='store_true', help='no progress bars')
    return parser.parse_args()


def _ints(text: str) -> list:
    """'1e4,1e5' -> [10000, 100000]."""
    try:
        return [int(float(v)) for v in text.split(',') if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'expected comma-separated numbers, got {text!r}') from err


def run_retrieval(args: argparse.Namespace, crop: list, checkpoint) -> None:
    """The retrieval benchmark (see the module docstring)."""
    from aoissl_mm.utils import write_json
    from aoissl_mm.utils.retrieval_benchmark import benchmark_retrieval, format_retrieval_report
    scaling = dict(noise=args.distractor_noise, values_mode=args.distractor_values,
                   min_recall=args.min_recall, sweep_queries=args.sweep_queries,
                   fp16_keys=dict(config=None, on=True, off=False)[args.fp16_keys])
    if args.nlists:
        scaling['nlists'] = args.nlists
    if args.nprobes:
        scaling['nprobes'] = args.nprobes
    res = benchmark_retrieval(
        args.config, checkpoint, crop, args.batch, args.warmup, args.iters, args.device,
        False if args.no_amp else None, args.compare, args.compare_checkpoint,
        int(args.memory_size) if args.memory_size else None, scaling, args.memory_sizes,
        args.add_images, dict(data_root=args.add_data_root, split=args.add_split,
                              threads=args.add_threads), args.cfg_options,
        not args.no_progress)
    print(format_retrieval_report(res))
    out = args.json or osp.join('work_dirs', 'benchmark',
                                osp.splitext(osp.basename(args.config))[0] + '.json')
    write_json(out, res)
    print(f'results written to {out}')


def main() -> None:
    args = parse_args()
    from aoissl_mm.utils import benchmark_segmentor, load_config, write_json
    cfg = load_config(args.config)
    crop = args.crop * 2 if len(args.crop) == 1 else args.crop[:2]
    checkpoint = args.checkpoint_opt or args.checkpoint
    if cfg.model.get('type') == 'RetrievalSegmentor':
        run_retrieval(args, crop, checkpoint)
        return
    res = benchmark_segmentor(cfg, checkpoint, crop, args.batch, args.warmup, args.iters,
                              args.device, False if args.no_amp else None)
    res['config'] = args.config
    from prettytable import PrettyTable
    table = PrettyTable(['config', 'backend', 'device', 'amp', 'crop', 'batch', 'crops/s',
                         's/batch', 'peak MiB', 'params (M)'])
    table.add_row([osp.basename(args.config), f"torch {res['torch']}", res['device'], res['amp'],
                   'x'.join(map(str, res['crop_size'])), res['batch_size'],
                   f"{res['crops_per_s']:.2f}", f"{res['s_per_batch']:.3f}",
                   f"{res['peak_mem_mib']:.0f}", f"{res['params'] / 1e6:.2f}"])
    if args.onnx:
        from aoissl_mm.deploy.onnx_benchmark import benchmark_onnx
        onnx_res = benchmark_onnx(args.onnx, crop, args.batch, args.warmup, args.iters)
        res['onnxruntime'] = onnx_res
        table.add_row([osp.basename(args.onnx), onnx_res['backend'], onnx_res['device'], False,
                       'x'.join(map(str, onnx_res['crop_size'])), onnx_res['batch_size'],
                       f"{onnx_res['crops_per_s']:.2f}", f"{onnx_res['s_per_batch']:.3f}",
                       '-', '-'])
    print(table)
    out = args.json or osp.join('work_dirs', 'benchmark',
                                osp.splitext(osp.basename(args.config))[0] + '.json')
    write_json(out, res)
    print(f'results written to {out}')


if __name__ == '__main__':
    main()
