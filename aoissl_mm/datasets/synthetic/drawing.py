"""Drawing primitives of the synthetic renderer: polygons, curves and compositing.

Polygons are float (x, y) arrays in image pixels; they are rasterised by
OpenCV in fixed point (:data:`SHIFT` fractional bits) so sub-pixel positions
matter. :class:`Composer` alpha-composites material layers into the two light
channels.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

__all__ = ['SHIFT', 'Roi', 'Composer', 'to_fixed_point', 'fill', 'bezier', 'band', 'circle',
           'wedge_polygon', 'loop_profile', 'smooth_noise', 'apply_affine', 'rect']

#: Fixed-point fractional bits of the cv2 drawing calls.
SHIFT = 4
_SCALE = float(1 << SHIFT)

#: A region of an image: (row slice, column slice).
Roi = Tuple[slice, slice]


def to_fixed_point(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> int32 fixed point for cv2 drawing.

    Args:
        points (np.ndarray): Coordinates of any shape.

    Returns:
        np.ndarray: ``round(points * 2**SHIFT)`` as int32.
    """
    return np.round(np.asarray(points, dtype=np.float64) * _SCALE).astype(np.int32)


def fill(canvas: np.ndarray, polys: Sequence[np.ndarray], value: float, aa: bool) -> None:
    """Fill polygons into ``canvas`` in place.

    Args:
        canvas (np.ndarray): H x W image to draw into.
        polys (Sequence[np.ndarray]): Polygons, each (K, 2) float (x, y).
        value (float): Fill value.
        aa (bool): Anti-aliased edges (else 8-connected, hard edges).
    """
    cv2.fillPoly(canvas, [to_fixed_point(p) for p in polys], value,
                 cv2.LINE_AA if aa else cv2.LINE_8, SHIFT)


def bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray,
           n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Points and unit tangents of a cubic Bezier curve at n parameters.

    Args:
        p0, p1, p2, p3 (np.ndarray): (2,) control points.
        n (int): Number of equally spaced parameters in [0, 1].

    Returns:
        Tuple[np.ndarray, np.ndarray]: (n, 2) points and (n, 2) unit tangents.
    """
    t = np.linspace(0.0, 1.0, n)[:, None]
    s = 1.0 - t
    pts = s ** 3 * p0 + 3 * s * s * t * p1 + 3 * s * t * t * p2 + t ** 3 * p3
    der = 3 * s * s * (p1 - p0) + 6 * s * t * (p2 - p1) + 3 * t * t * (p3 - p2)
    der /= np.maximum(np.linalg.norm(der, axis=1, keepdims=True), 1e-9)
    return pts, der


def band(pts: np.ndarray, tangents: np.ndarray, width: float) -> np.ndarray:
    """Closed polygon of a band of the given width around a centre line.

    Args:
        pts (np.ndarray): (n, 2) centre line.
        tangents (np.ndarray): (n, 2) unit tangents of the centre line.
        width (float): Band width in pixels.

    Returns:
        np.ndarray: (2n, 2) polygon.
    """
    normal = np.stack([-tangents[:, 1], tangents[:, 0]], axis=1) * (width / 2.0)
    return np.concatenate([pts + normal, (pts - normal)[::-1]], axis=0)


def circle(cx: float, cy: float, r: float, n: int = 28) -> np.ndarray:
    """Polygon of a circle (sub-pixel centre and radius).

    Args:
        cx (float): Centre x.
        cy (float): Centre y.
        r (float): Radius.
        n (int): Number of vertices.

    Returns:
        np.ndarray: (n, 2) polygon.
    """
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], axis=1)


def wedge_polygon(centre: np.ndarray, direction: np.ndarray, half_len: float,
                  half_wid: float, n: int = 24) -> np.ndarray:
    """Teardrop polygon of a wedge bond, long axis along ``direction``.

    The end facing the wire (negative along ``direction``) is narrower; the
    pressed tail is wider, like the tool imprint of a stitch bond.

    Args:
        centre (np.ndarray): (2,) centre.
        direction (np.ndarray): (2,) unit direction of the long axis.
        half_len (float): Half length.
        half_wid (float): Half width (before the teardrop widening).
        n (int): Number of vertices.

    Returns:
        np.ndarray: (n, 2) polygon.
    """
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    along = half_len * np.cos(ang)
    across = half_wid * np.sin(ang) * (1.0 + 0.22 * np.cos(ang))
    d = np.asarray(direction, dtype=np.float64)
    nrm = np.array([-d[1], d[0]])
    return centre + np.outer(along, d) + np.outer(across, nrm)


def loop_profile(t: np.ndarray) -> np.ndarray:
    """Height of a ball-bond loop (0..1) along the wire: steep neck, long tail.

    Args:
        t (np.ndarray): Positions along the wire in [0, 1].

    Returns:
        np.ndarray: Heights, maximum 1.
    """
    h = np.power(t, 0.3) * np.power(1.0 - t, 0.8)
    return h / h.max()


def smooth_noise(rng: np.random.Generator, shape: Tuple[int, int], cell: float) -> np.ndarray:
    """Unit-variance low-frequency noise field of the given (H, W).

    Args:
        rng (np.random.Generator): Source of randomness.
        shape (Tuple[int, int]): (H, W) of the field.
        cell (float): Size of a noise cell in pixels (cubic interpolation).

    Returns:
        np.ndarray: float32 (H, W) field.
    """
    h, w = shape
    gh, gw = max(2, int(math.ceil(h / cell)) + 1), max(2, int(math.ceil(w / cell)) + 1)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return field / max(float(field.std()), 1e-6)


def apply_affine(mat: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map points with a 2x3 affine matrix.

    Args:
        mat (np.ndarray): (2, 3) matrix.
        pts (np.ndarray): Points, reshaped to (K, 2).

    Returns:
        np.ndarray: (K, 2) mapped points.
    """
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    return pts @ mat[:, :2].T + mat[:, 2]


def rect(cx: float, cy: float, hx: float, hy: float) -> np.ndarray:
    """(4, 2) polygon of an axis-aligned rectangle from centre and half sides."""
    return np.array([[cx - hx, cy - hy], [cx + hx, cy - hy], [cx + hx, cy + hy],
                     [cx - hx, cy + hy]], dtype=np.float64)


Layer = Tuple[np.ndarray, Roi]
Value = Union[float, np.ndarray]


class Composer:
    """Two intensity channels plus their texture amplitudes, alpha-composited.

    Every layer is composited only inside the bounding box of its coverage.

    Args:
        shape (Tuple[int, int]): (H, W) of the image.
    """

    def __init__(self, shape: Tuple[int, int]) -> None:
        self.shape = shape
        self.value = np.zeros((2,) + shape, dtype=np.float32)
        self.grain = np.zeros((2,) + shape, dtype=np.float32)

    def coverage(self, polys: Sequence[np.ndarray], roi: Optional[Roi] = None) -> Layer:
        """Anti-aliased coverage (0..1) of filled polygons, and its region.

        Args:
            polys (Sequence[np.ndarray]): Polygons to fill.
            roi (Roi, optional): Region to crop to; default the bounding box
                of the coverage.

        Returns:
            Tuple[np.ndarray, Roi]: float32 coverage inside the region, and
            the region (a *layer*).
        """
        canvas = np.zeros(self.shape, dtype=np.uint8)
        fill(canvas, polys, 255, aa=True)
        if roi is None:
            x, y, w, h = cv2.boundingRect(canvas)
            roi = (slice(y, y + h), slice(x, x + w))
        return canvas[roi].astype(np.float32) * np.float32(1.0 / 255.0), roi

    def _crop(self, value: Value, roi: Roi) -> Value:
        if isinstance(value, np.ndarray) and value.shape == self.shape:
            return value[roi]
        return value

    def paint(self, layer: Layer, values: Sequence[Value], grains: Sequence[float]) -> None:
        """Composite per-channel ``values`` (scalars or maps) and grain amplitudes.

        Args:
            layer (Tuple[np.ndarray, Roi]): Coverage and region.
            values (Sequence): Intensity per channel: a scalar, a full-image
                map or a map of the region's size.
            grains (Sequence[float]): Texture amplitude per channel.
        """
        cov, roi = layer
        for c in range(2):
            self.blend(layer, c, values[c])
            g = self.grain[c][roi]
            g += (np.float32(grains[c]) - g) * cov

    def blend(self, layer: Layer, channel: int, value: Value, weight: float = 1.0) -> None:
        """Composite one channel's intensity only (highlights, shading).

        Args:
            layer (Tuple[np.ndarray, Roi]): Coverage and region.
            channel (int): 0 (ring light) or 1 (coaxial light).
            value (float | np.ndarray): Intensity, as in :meth:`paint`.
            weight (float): Opacity multiplier of the coverage.
        """
        cov, roi = layer
        v = self.value[channel][roi]
        v += (self._crop(value, roi) - v) * (cov * np.float32(weight))
