"""The exported graph: raw 0-255 pixels -> per-class sigmoid probabilities.

:class:`OnnxExportWrapper` puts the config's Z-score in front of a
``MultiLabelEncoderDecoder``'s ``encode_decode`` and a sigmoid after it, so
the ONNX file needs no preprocessing from its consumer.
:func:`make_exportable` swaps the layers ONNX cannot express for exact
equivalents that it can (``AdaptiveMaxPool2d`` of the UPerNet pyramid pooling:
ONNX has no adaptive max pool and torch's exporters refuse it).
"""
import copy
from typing import Sequence, Tuple, Union

import torch
from torch import Tensor, nn


class ExportableAdaptiveMaxPool2d(nn.Module):
    """``nn.AdaptiveMaxPool2d`` from slices and ``amax``, exportable at any input size.

    Bin ``i`` of ``s`` along an axis of length ``L`` covers ``[floor(i L / s),
    ceil((i + 1) L / s))``, torch's rule; max pooling is separable, so rows
    are pooled first, then columns (``2 s`` slices instead of ``s**2``). The
    bounds are computed from the input's shape, so a dynamic-shape export
    keeps them symbolic.

    Args:
        output_size (int | Sequence[int]): ``s`` or ``(s_h, s_w)``.
    """

    def __init__(self, output_size: Union[int, Sequence[int]]) -> None:
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        if any(s is None for s in output_size):
            raise ValueError(f'ExportableAdaptiveMaxPool2d: output size {output_size} with None '
                             'is not supported')
        self.output_size: Tuple[int, int] = (int(output_size[0]), int(output_size[1]))

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``(N, C, H, W)`` to ``(N, C, s_h, s_w)``."""
        h, w = x.shape[-2], x.shape[-1]
        sh, sw = self.output_size
        # ceil written with non-negative operands: floor and truncation agree in ONNX
        rows = torch.stack([x[:, :, (i * h) // sh:((i + 1) * h + sh - 1) // sh, :].amax(2)
                            for i in range(sh)], dim=2)
        return torch.stack([rows[:, :, :, (j * w) // sw:((j + 1) * w + sw - 1) // sw].amax(3)
                            for j in range(sw)], dim=3)


def make_exportable(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every ``AdaptiveMaxPool2d`` made exportable."""
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.AdaptiveMaxPool2d):
                if child.return_indices:
                    raise ValueError(f'{name}: AdaptiveMaxPool2d(return_indices=True) cannot '
                                     'be exported')
                setattr(module, name, ExportableAdaptiveMaxPool2d(child.output_size))
    return model


class OnnxExportWrapper(nn.Module):
    """Raw pixels (N, 2, H, W) in 0-255 units -> sigmoid probabilities (N, C, H, W).

    ``H`` and ``W`` must be multiples of the model's size divisor (the
    consumer pads with raw 0, as :class:`~aoissl_mm.apis.AOIInferencer`
    does). 16-bit images are fed as :class:`LoadAOIImage` gives them (their
    values unchanged, float32); the mean/std are the config's, in the units
    the model was trained on.

    Args:
        segmentor (nn.Module): A ``MultiLabelEncoderDecoder`` in eval mode.
        mean (Sequence[float]): Per-channel mean of the Z-score.
        std (Sequence[float]): Per-channel std of the Z-score.
    """

    def __init__(self, segmentor: nn.Module, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        super().__init__()
        self.segmentor = segmentor
        self.register_buffer('mean', torch.tensor([float(v) for v in mean]).view(1, -1, 1, 1))
        self.register_buffer('std', torch.tensor([float(v) for v in std]).view(1, -1, 1, 1))

    def forward(self, pixels: Tensor) -> Tensor:
        """Z-score, ``encode_decode`` at the input's size, sigmoid."""
        x = (pixels - self.mean) / self.std
        meta = dict(img_shape=x.shape[2:])  # the head resizes its logits to the input
        return self.segmentor.encode_decode(x, [meta]).float().sigmoid()
