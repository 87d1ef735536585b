"""Test a segmentor (mmseg's ``tools/test.py`` flags) with the aoissl_mm plugin loaded.

Example::

    python tools/test.py configs/fastervit0_upernet_aoi_cpu.py work_dirs/x/iter_800.pth \
        --show-dir overlays --out predictions

The checkpoint (a file or an ``http(s)://`` URL) is read once, weights-only, and must match the
model key for key (mmengine only warns); the Runner then loads that copy at its usual place. A
retrieval config whose backbone is loaded by ``init_cfg`` (or random on purpose) runs without one:
its ``init_cfg`` is applied and logged (mmengine's ``Runner.test()`` would skip it).
"""
import argparse
import os

from mmengine.config import DictAction


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a segmentor (aoissl_mm)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint file or http(s):// URL (a retrieval config takes any '
                        'checkpoint holding its backbone, or none if its backbone is set by '
                        'init_cfg or random on purpose)')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='directory for the predicted bit-mask PNGs')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where the multi-label overlays are saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (keys are checked)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    from aoissl_mm.utils import load_config, setup_test_cfg
    from aoissl_mm.utils.test_setup import load_test_weights
    cfg = load_config(args.config, args.cfg_options)
    cfg = setup_test_cfg(cfg, args.config, args.checkpoint, args.work_dir, args.out, args.show,
                         args.show_dir, args.wait_time, args.tta, args.launcher)
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    # a checkpoint: read once, checked strictly; none: the model's own init (init_cfg), logged
    load_test_weights(runner, args.checkpoint)
    runner.test()


if __name__ == '__main__':
    main()
