"""Data preprocessors."""
from .aoi_selfsup_data_preprocessor import AOISelfSupDataPreprocessor

__all__ = ['AOISelfSupDataPreprocessor']
