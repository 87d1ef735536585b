"""Library functions behind the thin ``tools/`` scripts.

Runner setup, config-key and class checks, the one checkpoint reader, atomic file
writing, benchmark, image statistics, learning curves.

The names below are imported on first use (PEP 562), so that low-level modules
(:mod:`aoissl_mm.datasets.io` imports :mod:`.atomic_io`) can use this package
without importing the higher-level ones that depend on them.
"""
import importlib
from typing import Any

_EXPORTS = {
    'load_config': 'runner_setup',
    'check_config_keys': 'runner_setup',
    'check_dataset_classes': 'runner_setup',
    'setup_train_cfg': 'runner_setup',
    'setup_test_cfg': 'test_setup',
    'load_test_weights': 'test_setup',
    'benchmark_segmentor': 'benchmark',
    'write_json': 'benchmark',
    'compute_image_stats': 'image_stats',
    'check_checkpoint_matches': 'checkpoint',
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(f'.{_EXPORTS[name]}', __name__), name)
    globals()[name] = value
    return value
