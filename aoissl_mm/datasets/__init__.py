"""AOI datasets, file I/O, transforms and the synthetic benchmark."""
from . import transforms  # noqa: F401
from .aoi_dataset import AOIDataset
from .aoi_pretrain_dataset import AOIPretrainDataset

__all__ = ['AOIDataset', 'AOIPretrainDataset']
