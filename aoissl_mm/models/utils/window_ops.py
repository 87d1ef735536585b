"""Window partitioning and normalised grid coordinates.

Square, non-overlapping, non-shifted windows as used by FasterViT's
transformer stages and its hierarchical attention (carrier-token windows),
and the normalised ``(-1..1)`` coordinates its positional MLP is evaluated
on. Written from the FasterViT paper (Hatamizadeh et al., ICLR 2024) and the
AOI-SSL spec; no NVIDIA code (non-commercial licence) was consulted or copied.
"""
import torch

__all__ = ['grid_coords', 'window_partition', 'window_reverse']


def grid_coords(height: int, width: int) -> torch.Tensor:
    """Normalised (-1..1) row-major coordinates of a ``height x width`` grid.

    Args:
        height (int): Grid rows.
        width (int): Grid columns.

    Returns:
        torch.Tensor: ``(height * width, 2)`` float tensor of ``(y, x)``; an
        axis of length 1 has coordinate 0.
    """
    ys = torch.linspace(-1.0, 1.0, height) if height > 1 else torch.zeros(1)
    xs = torch.linspace(-1.0, 1.0, width) if width > 1 else torch.zeros(1)
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([yy, xx], dim=-1).reshape(-1, 2)


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Split a ``(B, C, H, W)`` map into row-major windows.

    Args:
        x (torch.Tensor): Map whose ``H`` and ``W`` are multiples of
            ``window_size``.
        window_size (int): Window side.

    Returns:
        torch.Tensor: ``(B * nH * nW, window_size**2, C)`` tokens, windows
        ordered ``(b, row, col)`` and tokens row-major inside a window.
    """
    b, c, h, w = x.shape
    x = x.view(b, c, h // window_size, window_size, w // window_size, window_size)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(-1, window_size * window_size, c)


def window_reverse(windows: torch.Tensor, window_size: int, height: int,
                   width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`.

    Args:
        windows (torch.Tensor): ``(B * nH * nW, window_size**2, C)`` tokens.
        window_size (int): Window side.
        height (int): Map height (multiple of ``window_size``).
        width (int): Map width (multiple of ``window_size``).

    Returns:
        torch.Tensor: ``(B, C, height, width)`` map.
    """
    nh, nw = height // window_size, width // window_size
    c = windows.shape[-1]
    x = windows.view(-1, nh, nw, window_size, window_size, c)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(-1, c, height, width)
