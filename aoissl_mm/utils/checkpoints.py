"""Old name of :mod:`aoissl_mm.utils.checkpoint`; kept until ``utils/benchmark.py`` imports the new one."""
from .checkpoint import check_checkpoint_matches

__all__ = ['check_checkpoint_matches']
