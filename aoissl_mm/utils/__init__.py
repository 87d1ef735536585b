"""Library functions behind the thin ``tools/`` scripts.

Runner setup, config-key and class checks, the one checkpoint reader, benchmark, image
statistics, learning curves.
"""
from .benchmark import benchmark_segmentor, write_json
from .checkpoint import check_checkpoint_matches
from .image_stats import compute_image_stats
from .runner_setup import (
                           check_config_keys,
                           check_dataset_classes,
                           load_config,
                           setup_test_cfg,
                           setup_train_cfg,
)

__all__ = [
    'load_config', 'check_config_keys', 'setup_train_cfg', 'setup_test_cfg',
    'benchmark_segmentor', 'write_json', 'compute_image_stats', 'check_checkpoint_matches',
    'check_dataset_classes'
]
