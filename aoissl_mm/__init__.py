"""aoissl_mm: AOI-SSL as an OpenMMLab (mmseg + mmpretrain) plugin.

Importing the package first applies the compatibility shims of
:mod:`aoissl_mm.compat` (pure-PyTorch ``mmcv.ops`` when the compiled ops are
missing; weights-only checkpoint loading for mmengine on torch >= 2.6), then
registers every dataset, transform, model, metric, hook and visualizer in the
mmseg / mmpretrain registries.
"""
from . import compat

compat.apply_all()

from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401

__version__ = '0.1.0'
