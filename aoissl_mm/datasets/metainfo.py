"""The AOI class list and palette: the one place they are defined.

Datasets, the synthetic generator, configs (``num_classes=len(AOI_CLASSES)``
through ``_base_``) and tools read them from here.
"""
from typing import List, Tuple

__all__ = ['AOI_CLASSES', 'AOI_PALETTE']

#: Class order of the multi-label masks: bit ``c`` of a label PNG is class ``c``.
AOI_CLASSES: Tuple[str, ...] = ('wire', 'ball', 'wedge', 'epoxy')
#: Overlay colours (RGB), one per class.
AOI_PALETTE: List[List[int]] = [[230, 25, 75], [255, 225, 25], [60, 180, 255], [60, 220, 75]]
