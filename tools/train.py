"""Train a segmentor (mmseg's ``tools/train.py`` flags) with the aoissl_mm plugin loaded.

Example::

    python tools/train.py configs/fastervit0_upernet_aoi.py
    python tools/train.py configs/fastervit0_upernet_aoi_cpu.py --work-dir work_dirs/fv0_cpu
"""
import argparse
import os

from mmengine.config import DictAction


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a segmentor (aoissl_mm)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from the latest checkpoint in the work dir, or from '
                        'the given checkpoint file')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic mixed precision (on by default with CUDA)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (keys are checked)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    from aoissl_mm.utils import load_config, setup_train_cfg
    cfg = load_config(args.config, args.cfg_options)
    cfg = setup_train_cfg(cfg, args.config, args.work_dir, args.resume, args.amp, args.launcher)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
