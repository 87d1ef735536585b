"""The DINO / iBOT projection head (spec §5): MLP, L2 norm, weight-normalised prototypes."""
from typing import Optional, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.registry import MODELS
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


@MODELS.register_module()
class DINOHead(BaseModule):
    """Project an embedding onto ``out_channels`` prototype scores (DINO / iBOT).

    ``Linear(in, hidden) -> GELU -> Linear(hidden, hidden) -> GELU ->
    Linear(hidden, bottleneck)``, L2-normalise, then a weight-normalised
    ``Linear(bottleneck, out_channels)`` without bias. The MLP has no
    normalisation layers and is initialised trunc-normal(0.02) with zero
    biases. The weight-norm gain is initialised to 1 and stays trainable
    (DINO's ``norm_last_layer=False``; spec §5).

    The weight norm is ``torch.nn.utils.parametrizations.weight_norm`` (gain
    ``last_layer.parametrizations.weight.original0``, direction
    ``original1``): the older ``torch.nn.utils.weight_norm`` hook cannot be
    deep-copied on recent PyTorch, and the teacher is a deep copy.

    Any leading shape works: ``(B, C)`` CLS embeddings give ``(B, K)``,
    ``(B, L, C)`` patch tokens give ``(B, L, K)`` (iBOT shares one head).

    Args:
        in_channels (int): Embedding width (384 for ViT-Tiny, 512 for FasterViT-0).
            Defaults to 384.
        hidden_channels (int): MLP width. Defaults to 2048.
        bottleneck_channels (int): Width before the prototypes. Defaults to 256.
        out_channels (int): Number of prototypes K. Defaults to 768.
        init_cfg (dict, optional): mmengine init config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 384,
                 hidden_channels: int = 2048,
                 bottleneck_channels: int = 256,
                 out_channels: int = 768,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels), ('hidden_channels', hidden_channels),
                            ('bottleneck_channels', bottleneck_channels),
                            ('out_channels', out_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'DINOHead: {name} must be an int >= 1, got {value!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hidden_channels), nn.GELU(),
            nn.Linear(hidden_channels, hidden_channels), nn.GELU(),
            nn.Linear(hidden_channels, bottleneck_channels))
        self.last_layer = nn.Linear(bottleneck_channels, out_channels, bias=False)
        self._init_default_weights()
        self.last_layer = weight_norm(self.last_layer)
        with torch.no_grad():
            self.last_layer.parametrizations.weight.original0.fill_(1.0)

    def _init_default_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prototype scores.

        Args:
            x (torch.Tensor): ``(..., in_channels)`` embeddings.

        Returns:
            torch.Tensor: ``(..., out_channels)`` scores (logits before the
            temperature).
        """
        if x.shape[-1] != self.in_channels:
            raise ValueError(f'DINOHead: expected {self.in_channels} input channels in the last '
                             f'dimension, got shape {tuple(x.shape)}')
        z = self.mlp(x)
        z = F.normalize(z, dim=-1, p=2, eps=1e-6 if z.dtype == torch.float16 else 1e-12)
        return self.last_layer(z)
