"""A 2-channel Z-score preprocessor for mmpretrain's self-supervised algorithms."""
from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor
from mmpretrain.models.utils.data_preprocessor import SelfSupDataPreprocessor
from mmpretrain.registry import MODELS

# spec §1.3 set A (pretraining statistics) in 0-255 units
AOI_MEAN = (45.42, 59.82)
AOI_STD = (56.70, 69.03)


@MODELS.register_module()
class AOISelfSupDataPreprocessor(SelfSupDataPreprocessor):
    """:class:`SelfSupDataPreprocessor` for any number of channels.

    mmengine's ``ImgDataPreprocessor`` asserts 1 or 3 mean/std values; AOI
    images have 2 light buffers. Everything else (list-of-views inputs, float
    cast, Z-score) is the parent's ``forward``. Channel swapping is refused:
    it has no meaning for light buffers.

    Args:
        mean (Sequence[float], optional): Per-channel mean, in the units of the
            loaded images (0-255 for 8-bit). Defaults to spec §1.3 set A.
        std (Sequence[float], optional): Per-channel standard deviation.
        pad_size_divisor (int): Kept for API compatibility. Defaults to 1.
        pad_value (float): Kept for API compatibility. Defaults to 0.
        non_blocking (bool): Non-blocking host-to-device copies.
    """

    def __init__(self,
                 mean: Optional[Sequence[Union[float, int]]] = AOI_MEAN,
                 std: Optional[Sequence[Union[float, int]]] = AOI_STD,
                 pad_size_divisor: int = 1,
                 pad_value: Union[float, int] = 0,
                 non_blocking: Optional[bool] = False,
                 **kwargs) -> None:
        bad = [k for k in ('to_rgb', 'bgr_to_rgb', 'rgb_to_bgr') if kwargs.pop(k, False)]
        if bad or kwargs:
            raise TypeError(f'AOISelfSupDataPreprocessor: unsupported argument(s) '
                            f'{bad + list(kwargs)} (2-channel light buffers have no RGB order)')
        BaseDataPreprocessor.__init__(self, non_blocking)
        if (mean is None) != (std is None):
            raise ValueError('AOISelfSupDataPreprocessor: give both mean and std, or neither')
        if mean is not None:
            if len(mean) != len(std):
                raise ValueError(f'AOISelfSupDataPreprocessor: mean has {len(mean)} values '
                                 f'but std has {len(std)}')
            if min(std) <= 0:
                raise ValueError(f'AOISelfSupDataPreprocessor: std must be > 0, got {std}')
            self._enable_normalize = True
            self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
                                 False)
            self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1),
                                 False)
        else:
            self._enable_normalize = False
        self._channel_conversion = False
        self.pad_size_divisor = pad_size_divisor
        self.pad_value = pad_value
