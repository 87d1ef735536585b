"""Procedural benchmark of synthetic wire-bonded devices (the embedded data set).

It stands in for the proprietary two-light AOI images of the paper: a die with
bond pads sits in an irregular epoxy die-attach fillet on a substrate; thin
gold wires loop from balls on the pads to wedges (stitch bonds) on lead-frame
fingers. Each image has two grey-scale buffers:

* ``buffer0`` - diffuse ring light: mid-grey die, substrate and leads, wires
  dark and of low contrast with a faint soft shadow, epoxy bright and matte;
* ``buffer1`` - coaxial light: flat metal (pads, leads, wedges, the die's
  mirror-like silicon) bright, a specular highlight along each wire's
  centre line that fades on the steep parts of the loop, balls a dark disc
  with a bright spot and ring, matte epoxy dark.

Most images show the device on a black (exactly zero) background frame, sizes
vary per image (width and height independently), and every image carries
sensor noise, a mild blur, vignetting and gain/contrast changes.

Labels are multi-label, classes in the order ``('wire', 'ball', 'wedge',
'epoxy')``: the wire mask lies on top of the ball, wedge and epoxy masks, which
stay set underneath, so pixels carry several bits. Class pixel shares follow
the paper's Fig. 3: epoxy >> wire > ball > wedge.

A *family* (:func:`make_family_layout`) fixes one device design; its renderings
(:func:`render_sample`) differ by pose (shift, small rotation and scale),
frame, unit-to-unit variation of the epoxy outline and wire bends, lighting,
blur and noise. :func:`generate_synthetic_aoi` writes the on-disk layout read
by :class:`~aoissl_mm.datasets.AOIDataset` and
:class:`~aoissl_mm.datasets.AOIPretrainDataset`::

    <out_root>/images/{train,val,test}/<stem>_buffer0.png, <stem>_buffer1.png
    <out_root>/labels/{train,val,test}/<stem>.png          (bit c <=> class c)
    <out_root>/pretrain/<family>/<stem>_buffer0.png, <stem>_buffer1.png
    <out_root>/synthetic_aoi.json                          (manifest, written last)
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .io import write_image, write_multilabel_mask, write_text

SYNTHETIC_CLASSES: Tuple[str, ...] = ('wire', 'ball', 'wedge', 'epoxy')
MANIFEST_NAME = 'synthetic_aoi.json'
MANIFEST_VERSION = 1
LABELLED_SPLITS: Tuple[str, ...] = ('train', 'val', 'test')

_SHIFT = 4                  # fixed-point bits of the cv2 drawing calls
_SCALE = float(1 << _SHIFT)
WIRE, BALL, WEDGE, EPOXY = range(4)


# ----------------------------------------------------------------------------
# family layout
# ----------------------------------------------------------------------------
@dataclass
class FamilyLayout:
    """One device design, in nominal device pixels centred on the device.

    x grows to the right and y downwards; a rendering maps these coordinates
    to the image with a small similarity transform.

    Args:
        family_id (int): Index of the family.
        name (str): Folder/stem prefix, e.g. ``'fam03'``.
        size_range (tuple): (min, max) image side the family is made for.
        device_size (tuple): (width, height) of the device area (substrate).
        die_center (np.ndarray): (2,) centre of the die.
        die_half (np.ndarray): (2,) half width and half height of the die.
        circuit_rects (np.ndarray): (K, 4) die circuitry rectangles
            ``x0, y0, x1, y1`` relative to the die centre.
        circuit_levels (np.ndarray): (K, 2) intensity offsets of each
            rectangle in buffer0 and buffer1.
        pads (np.ndarray): (N, 2) bond-pad centres (= ball centres).
        pad_half (float): Half side of a square bond pad.
        wire_ends (np.ndarray): (N, 2) wire end points (= wedge positions).
        wire_bends (np.ndarray): (N, 2) lateral offsets of the two inner
            Bezier control points, as fractions of the wire length.
        loop_heights (np.ndarray): (N,) loop height of each wire (pixels).
        leads (List[np.ndarray]): Lead-finger polygons, each (4, 2).
        wire_width (float): Wire width in pixels (2 to 4).
        ball_radius (float): Ball radius in pixels.
        wedge_axes (tuple): Half length and half width of a wedge.
        epoxy_margins (np.ndarray): (M,) fillet width per outline angle.
        epoxy_power (float): Super-ellipse exponent of the fillet outline.
        materials (Dict[str, Tuple[float, float]]): Base intensity of each
            material in (buffer0, buffer1).
        shadow_dir (np.ndarray): (2,) unit direction of wire shadows in
            buffer0.
    """

    family_id: int
    name: str
    size_range: Tuple[int, int]
    device_size: Tuple[float, float]
    die_center: np.ndarray
    die_half: np.ndarray
    circuit_rects: np.ndarray
    circuit_levels: np.ndarray
    pads: np.ndarray
    pad_half: float
    wire_ends: np.ndarray
    wire_bends: np.ndarray
    loop_heights: np.ndarray
    leads: List[np.ndarray]
    wire_width: float
    ball_radius: float
    wedge_axes: Tuple[float, float]
    epoxy_margins: np.ndarray
    epoxy_power: float
    materials: Dict[str, Tuple[float, float]]
    shadow_dir: np.ndarray

    @property
    def num_wires(self) -> int:
        """Number of bond wires (= balls = wedges)."""
        return int(self.pads.shape[0])

    def summary(self) -> dict:
        """JSON-ready description of the family for the manifest."""
        return dict(name=self.name,
                    device_size=[round(float(v), 2) for v in self.device_size],
                    die_size=[round(float(2 * v), 2) for v in self.die_half],
                    num_wires=self.num_wires,
                    wire_width=round(float(self.wire_width), 3),
                    ball_radius=round(float(self.ball_radius), 3),
                    num_leads=len(self.leads))


def _check_size_range(size_range: Sequence[int]) -> Tuple[int, int]:
    if len(size_range) != 2:
        raise ValueError(f'size_range must be (min, max), got {size_range!r}')
    lo, hi = int(size_range[0]), int(size_range[1])
    if lo < 96 or hi < lo:
        raise ValueError(f'size_range must satisfy 96 <= min <= max, got {size_range!r}')
    return lo, hi


def make_family_layout(rng: np.random.Generator,
                       family_id: int = 0,
                       size_range: Sequence[int] = (384, 1024)) -> FamilyLayout:
    """Draw one device design (die, pads, leads, wire routing, epoxy outline).

    Args:
        rng (np.random.Generator): Source of randomness.
        family_id (int): Index of the family, used for its name.
        size_range (Sequence[int]): (min, max) image side; the device is sized
            so that its renderings (plus black frame) fall in this range.

    Returns:
        FamilyLayout: The design, in nominal device pixels.
    """
    lo, hi = _check_size_range(size_range)
    dw = max(0.72 * lo, rng.uniform(0.45, 0.85) * hi)
    dh = max(0.72 * lo, rng.uniform(0.45, 0.85) * hi)
    small = min(dw, dh)

    wire_w = float(rng.uniform(2.2, 4.0))
    ball_r = wire_w * float(rng.uniform(1.5, 1.9))
    wedge_axes = (wire_w * float(rng.uniform(1.9, 2.4)), wire_w * float(rng.uniform(0.8, 1.0)))
    pad_half = ball_r * float(rng.uniform(1.25, 1.5))

    die_half = np.array([rng.uniform(0.13, 0.21) * dw, rng.uniform(0.13, 0.21) * dh])
    die_center = np.array([rng.uniform(-0.04, 0.04) * dw, rng.uniform(-0.04, 0.04) * dh])
    fillet = float(rng.uniform(0.045, 0.08) * small)
    lead_gap = 1.45 * fillet + float(rng.uniform(0.07, 0.13) * small)
    pitch = 2 * pad_half * float(rng.uniform(1.9, 2.8))
    fan = float(rng.uniform(1.15, 1.5))

    # bond pads on the die edges; each side may be unused, at least two are used
    sides = [s for s in range(4) if rng.random() < 0.8]
    if len(sides) < 2:
        sides = sorted(rng.choice(4, size=2, replace=False).tolist())
    pads, ends, leads = [], [], []
    edge_inset = pad_half * float(rng.uniform(1.3, 1.8))
    finger_len = float(rng.uniform(0.3, 0.55))
    for side in sides:
        axis = side % 2                         # 0: left/right edge (normal along x)
        sign = -1.0 if side < 2 else 1.0
        normal = np.zeros(2)
        normal[axis] = sign
        lat_axis = 1 - axis
        # keep a pitch free at the die corners so pads of adjacent sides never touch
        half_lat = die_half[lat_axis] - edge_inset - max(pitch, 3.0 * pad_half)
        count = int(min(12, max(1, np.floor(2 * half_lat / pitch) + 1)))
        count = int(rng.integers(max(1, count // 2), count + 1))
        lat = (np.linspace(-half_lat, half_lat, count) if count > 1 else np.zeros(1))
        lat = lat + rng.uniform(-0.08, 0.08, size=count) * pitch
        tip_dist = die_half[axis] + lead_gap
        dev_half = 0.5 * (dw if axis == 0 else dh)
        lat_cap = die_half[lat_axis] + lead_gap
        finger_w = min(pitch * fan * 0.62, 0.5 * lat_cap)
        for u in lat:
            pad = die_center.copy()
            pad[axis] += sign * (die_half[axis] - edge_inset)
            pad[lat_axis] += u
            tip_u = u * fan
            out_u = np.clip(u * fan * rng.uniform(1.25, 1.6), -(lat_cap - finger_w),
                            lat_cap - finger_w)
            tip = die_center.copy()
            tip[axis] += sign * tip_dist
            tip[lat_axis] += tip_u
            outer_n = dev_half - 0.02 * small
            finger_reach = max(tip_dist + 0.2 * small,
                               tip_dist + finger_len * (outer_n - abs(die_center[axis]) - tip_dist))
            finger_reach = min(finger_reach, outer_n * 1.1)
            quad = np.zeros((4, 2))
            for k, (n_off, u_off, wid) in enumerate(((tip_dist, tip_u, -0.5),
                                                     (tip_dist, tip_u, 0.5),
                                                     (finger_reach, out_u, 0.5),
                                                     (finger_reach, out_u, -0.5))):
                width = finger_w if k < 2 else finger_w * 1.25
                quad[k, axis] = die_center[axis] + sign * n_off
                quad[k, lat_axis] = die_center[lat_axis] + u_off + wid * width
            end = tip + normal * (wedge_axes[0] * 1.2 + rng.uniform(0.0, 0.12) * small)
            end[lat_axis] += rng.uniform(-0.12, 0.12) * finger_w
            pads.append(pad)
            ends.append(end)
            leads.append(quad)
    pads_a = np.asarray(pads, dtype=np.float64)
    ends_a = np.asarray(ends, dtype=np.float64)
    n_wires = len(pads)
    bend_scale = float(rng.uniform(0.0, 0.09))
    bends = rng.normal(0.0, 1.0, size=(n_wires, 2)) * bend_scale
    bends[:, 1] = 0.6 * bends[:, 1] + 0.4 * bends[:, 0]
    lengths = np.linalg.norm(ends_a - pads_a, axis=1)
    loop_heights = lengths * rng.uniform(0.25, 0.45) * rng.uniform(0.85, 1.15, size=n_wires)

    # die circuitry: blocks, memory arrays, a pad ring
    n_rects = int(rng.integers(14, 40))
    hw, hh = die_half
    x0 = rng.uniform(-hw * 0.85, hw * 0.75, n_rects)
    y0 = rng.uniform(-hh * 0.85, hh * 0.75, n_rects)
    x1 = np.minimum(x0 + rng.uniform(0.06, 0.55, n_rects) * hw, hw * 0.85)
    y1 = np.minimum(y0 + rng.uniform(0.06, 0.55, n_rects) * hh, hh * 0.85)
    rects = np.stack([x0, y0, x1, y1], axis=1)
    levels = np.stack([rng.normal(0, 9, n_rects), rng.normal(0, 22, n_rects)], axis=1)

    # epoxy fillet: smooth random fillet width around the die
    n_ang = 96
    ang = np.linspace(0, 2 * np.pi, n_ang, endpoint=False)
    wobble = np.zeros(n_ang)
    for k in range(1, 7):
        wobble += rng.normal(0, 0.45 / k) * np.cos(k * ang + rng.uniform(0, 2 * np.pi))
    margins = fillet * np.clip(1.0 + wobble + rng.normal(0, 0.05, n_ang), 0.35, 2.2)

    def level(lo_: float, hi_: float) -> float:
        return float(rng.uniform(lo_, hi_))

    materials = dict(
        substrate=(level(45, 80), level(20, 45)),
        lead=(level(100, 140), level(160, 215)),
        die=(level(60, 95), level(105, 165)),
        pad=(level(110, 140), level(185, 230)),
        epoxy=(level(130, 175), level(35, 70)),
        wire=(level(55, 85), level(25, 50)),
        wire_spec=(0.0, level(175, 240)),
        ball=(level(100, 135), level(40, 70)),
        ball_spec=(0.0, level(195, 245)),
        wedge=(level(115, 150), level(170, 225)),
    )
    theta = rng.uniform(0, 2 * np.pi)
    return FamilyLayout(
        family_id=int(family_id), name=f'fam{int(family_id):02d}', size_range=(lo, hi),
        device_size=(float(dw), float(dh)), die_center=die_center, die_half=die_half,
        circuit_rects=rects, circuit_levels=levels, pads=pads_a, pad_half=float(pad_half),
        wire_ends=ends_a, wire_bends=bends, loop_heights=loop_heights, leads=leads,
        wire_width=wire_w, ball_radius=float(ball_r), wedge_axes=wedge_axes,
        epoxy_margins=margins, epoxy_power=float(rng.uniform(3.5, 6.0)), materials=materials,
        shadow_dir=np.array([np.cos(theta), np.sin(theta)]))


# ----------------------------------------------------------------------------
# geometry helpers
# ----------------------------------------------------------------------------
def _fx(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> int32 fixed-point for cv2 drawing."""
    return np.round(np.asarray(points, dtype=np.float64) * _SCALE).astype(np.int32)


def _fill(canvas: np.ndarray, polys: Sequence[np.ndarray], value: float, aa: bool) -> None:
    cv2.fillPoly(canvas, [_fx(p) for p in polys], value,
                 cv2.LINE_AA if aa else cv2.LINE_8, _SHIFT)


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray,
            n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Points and unit tangents of a cubic Bezier curve at n parameters."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    s = 1.0 - t
    pts = s ** 3 * p0 + 3 * s * s * t * p1 + 3 * s * t * t * p2 + t ** 3 * p3
    der = 3 * s * s * (p1 - p0) + 6 * s * t * (p2 - p1) + 3 * t * t * (p3 - p2)
    der /= np.maximum(np.linalg.norm(der, axis=1, keepdims=True), 1e-9)
    return pts, der


def _band(pts: np.ndarray, tangents: np.ndarray, width: float) -> np.ndarray:
    """Closed polygon of a band of the given width around a centre line."""
    normal = np.stack([-tangents[:, 1], tangents[:, 0]], axis=1) * (width / 2.0)
    return np.concatenate([pts + normal, (pts - normal)[::-1]], axis=0)


def _circle(cx: float, cy: float, r: float, n: int = 28) -> np.ndarray:
    """Polygon of a circle (sub-pixel centre and radius)."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], axis=1)


def _wedge(centre: np.ndarray, direction: np.ndarray, half_len: float,
           half_wid: float, n: int = 24) -> np.ndarray:
    """Teardrop polygon of a wedge bond, long axis along ``direction``.

    The end facing the wire (negative along ``direction``) is narrower; the
    pressed tail is wider, like the tool imprint of a stitch bond.
    """
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    along = half_len * np.cos(ang)
    across = half_wid * np.sin(ang) * (1.0 + 0.22 * np.cos(ang))
    d = np.asarray(direction, dtype=np.float64)
    nrm = np.array([-d[1], d[0]])
    return centre + np.outer(along, d) + np.outer(across, nrm)


def _loop_profile(t: np.ndarray) -> np.ndarray:
    """Height of a ball-bond loop (0..1) along the wire: steep neck, long tail."""
    h = np.power(t, 0.3) * np.power(1.0 - t, 0.8)
    return h / h.max()


def _smooth_noise(rng: np.random.Generator, shape: Tuple[int, int], cell: float) -> np.ndarray:
    """Unit-variance low-frequency noise field of the given (H, W)."""
    h, w = shape
    gh, gw = max(2, int(math.ceil(h / cell)) + 1), max(2, int(math.ceil(w / cell)) + 1)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return field / max(float(field.std()), 1e-6)


_Roi = Tuple[slice, slice]


class _Composer:
    """Two intensity channels plus their texture amplitudes, alpha-composited.

    Every layer is composited only inside the bounding box of its coverage.
    """

    def __init__(self, shape: Tuple[int, int]) -> None:
        self.shape = shape
        self.value = np.zeros((2,) + shape, dtype=np.float32)
        self.grain = np.zeros((2,) + shape, dtype=np.float32)

    def coverage(self, polys: Sequence[np.ndarray],
                 roi: Optional[_Roi] = None) -> Tuple[np.ndarray, _Roi]:
        """Anti-aliased coverage (0..1) of filled polygons, and its region."""
        canvas = np.zeros(self.shape, dtype=np.uint8)
        _fill(canvas, polys, 255, aa=True)
        if roi is None:
            x, y, w, h = cv2.boundingRect(canvas)
            roi = (slice(y, y + h), slice(x, x + w))
        return canvas[roi].astype(np.float32) * np.float32(1.0 / 255.0), roi

    def _crop(self, value, roi: _Roi):
        if isinstance(value, np.ndarray) and value.shape == self.shape:
            return value[roi]
        return value

    def paint(self, layer: Tuple[np.ndarray, _Roi], values: Sequence,
              grains: Sequence[float]) -> None:
        """Composite per-channel ``values`` (scalars or maps) and grain amplitudes."""
        cov, roi = layer
        for c in range(2):
            self.blend(layer, c, values[c])
            g = self.grain[c][roi]
            g += (np.float32(grains[c]) - g) * cov

    def blend(self, layer: Tuple[np.ndarray, _Roi], channel: int, value,
              weight: float = 1.0) -> None:
        """Composite one channel's intensity only (highlights, shading)."""
        cov, roi = layer
        v = self.value[channel][roi]
        v += (self._crop(value, roi) - v) * (cov * np.float32(weight))


# ----------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------
def _pose(layout: FamilyLayout, rng: np.random.Generator) -> Tuple[np.ndarray, int, int]:
    """Draw an image size and the 2x3 map from device to image coordinates."""
    lo, hi = layout.size_range
    dw, dh = layout.device_size
    angle = math.radians(rng.uniform(-2.5, 2.5))
    scale = rng.uniform(0.96, 1.04)
    ca, sa = math.cos(angle) * scale, math.sin(angle) * scale
    bbox_w = abs(ca) * dw + abs(sa) * dh
    bbox_h = abs(sa) * dw + abs(ca) * dh
    framed = rng.random() < 0.8
    sizes = []
    for extent in (bbox_w, bbox_h):
        factor = rng.uniform(1.12, 1.65) if framed else rng.uniform(0.88, 1.0)
        sizes.append(int(np.clip(round(extent * factor), lo, hi)))
    width, height = sizes
    centre = []
    for size, extent in ((width, bbox_w), (height, bbox_h)):
        slack = (size - extent) / 2.0
        centre.append(size / 2.0 + rng.uniform(-0.8, 0.8) * abs(slack))
    mat = np.array([[ca, -sa, centre[0]], [sa, ca, centre[1]]], dtype=np.float64)
    return mat, width, height


def _apply(mat: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    return pts @ mat[:, :2].T + mat[:, 2]


def _rect(cx: float, cy: float, hx: float, hy: float) -> np.ndarray:
    return np.array([[cx - hx, cy - hy], [cx + hx, cy - hy], [cx + hx, cy + hy],
                     [cx - hx, cy + hy]], dtype=np.float64)


def _wire_paths(layout: FamilyLayout, mat: np.ndarray, scale: float,
                rng: np.random.Generator) -> List[Tuple[np.ndarray, ...]]:
    """Per wire: centre line, tangents, loop profile (0..1), loop height."""
    starts = _apply(mat, layout.pads)
    ends = _apply(mat, layout.wire_ends)
    wires = []
    for i in range(layout.num_wires):
        a, b = starts[i], ends[i]
        vec = b - a
        length = float(np.linalg.norm(vec))
        nrm = np.array([-vec[1], vec[0]]) / max(length, 1e-9)
        bend = layout.wire_bends[i] + rng.normal(0.0, 0.008, size=2)   # unit variation
        c1 = a + vec * 0.33 + nrm * bend[0] * length
        c2 = a + vec * 0.67 + nrm * bend[1] * length
        n = max(10, int(length / 4.0))
        pts, tan = _bezier(a, c1, c2, b, n)
        wires.append((pts, tan, _loop_profile(np.linspace(0.0, 1.0, n)),
                      float(layout.loop_heights[i] * scale)))
    return wires


def render_sample(layout: FamilyLayout,
                  rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Render one inspection image of a device family and its labels.

    Args:
        layout (FamilyLayout): The device design (see
            :func:`make_family_layout`).
        rng (np.random.Generator): Source of the per-image variation (pose,
            frame, unit variation, lighting, blur, noise).

    Returns:
        Tuple[np.ndarray, np.ndarray]: The image, H x W x 2 uint8
        (channel 0 = buffer0 ring light, 1 = buffer1 coaxial light), and the
        multi-label mask, H x W x 4 uint8 {0, 1} in the class order
        ``('wire', 'ball', 'wedge', 'epoxy')``.
    """
    mat, width, height = _pose(layout, rng)
    shape = (height, width)
    scale = float(np.hypot(mat[0, 0], mat[1, 0]))
    mats = layout.materials
    comp = _Composer(shape)
    masks = np.zeros((4,) + shape, dtype=np.uint8)

    # device area (substrate); everything outside stays exactly zero --------
    dw, dh = layout.device_size
    device = np.zeros(shape, dtype=np.uint8)
    _fill(device, [_apply(mat, _rect(0.0, 0.0, dw / 2, dh / 2))], 1, aa=False)
    low = _smooth_noise(rng, shape, cell=max(24.0, 0.08 * max(shape)))
    sub = mats['substrate']
    full = (np.ones(shape, np.float32), (slice(0, height), slice(0, width)))
    comp.paint(full, (sub[0] + 6.0 * low, sub[1] + 4.0 * low), (5.0, 3.0))

    # lead fingers (plated metal: flat, bright in the coaxial light) -------
    layer = comp.coverage([_apply(mat, q) for q in layout.leads])
    plate = _smooth_noise(rng, shape, cell=12.0)
    lead = mats['lead']
    comp.paint(layer, (lead[0] + 5.0 * plate, lead[1] + 14.0 * plate), (6.0, 9.0))

    # epoxy fillet, its outline varying from unit to unit -------------------
    n_ang = layout.epoxy_margins.size
    ang = np.linspace(0, 2 * np.pi, n_ang, endpoint=False)
    unit = 1.0 + 0.07 * np.cos(ang * rng.integers(2, 5) + rng.uniform(0, 2 * np.pi))
    margins = layout.epoxy_margins * unit * rng.uniform(0.93, 1.07)
    p = 2.0 / layout.epoxy_power
    cos, sin = np.cos(ang), np.sin(ang)
    outline = np.stack([np.sign(cos) * np.abs(cos) ** p * (layout.die_half[0] + margins),
                        np.sign(sin) * np.abs(sin) ** p * (layout.die_half[1] + margins)], 1)
    outline = _apply(mat, outline + layout.die_center)
    die_poly = _apply(mat, _rect(*layout.die_center, *layout.die_half))
    _fill(masks[EPOXY], [outline], 1, aa=False)
    _fill(masks[EPOXY], [die_poly], 0, aa=False)
    cov, roi = layer = comp.coverage([outline])
    # the fillet's meniscus: brighter (steeper) near the die
    off_die = np.ones(shape, np.uint8)
    _fill(off_die, [die_poly], 0, aa=False)
    dist = cv2.distanceTransform(np.ascontiguousarray(off_die[roi]), cv2.DIST_L2, 3)
    fillet = max(0.35 * float(np.median(layout.epoxy_margins)) * scale, 1.0)
    slope = np.exp(-dist / np.float32(fillet))
    epx = mats['epoxy']
    comp.paint(layer, (epx[0] * (0.82 + 0.3 * slope), epx[1] * (0.9 + 0.35 * slope)), (9.0, 6.0))

    # die with circuitry ----------------------------------------------------
    ids = np.zeros(shape, dtype=np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(layout.circuit_rects):
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) + layout.die_center
        _fill(ids, [_apply(mat, corners)], k + 1, aa=False)
    lut = np.zeros((2, 256), dtype=np.float32)
    lut[:, 1:1 + len(layout.circuit_levels)] = layout.circuit_levels.T
    cov, roi = layer = comp.coverage([die_poly])
    die = mats['die']
    die_ids = ids[roi]
    comp.paint(layer, (die[0] + lut[0][die_ids], die[1] + lut[1][die_ids] + 6.0 * low[roi]),
               (3.0, 5.0))

    # bond pads ---------------------------------------------------------------
    ph = layout.pad_half
    comp.paint(comp.coverage([_apply(mat, _rect(x, y, ph, ph)) for x, y in layout.pads]),
               mats['pad'], (3.0, 4.0))

    wires = _wire_paths(layout, mat, scale, rng)
    w = layout.wire_width * scale
    starts = [pts[0] for pts, _, _, _ in wires]
    ends = [pts[-1] for pts, _, _, _ in wires]

    # soft wire shadows in the ring light (buffer0 only; none in coaxial) ----
    shadow = [_band(pts + np.outer(prof * loop_h * 0.25, layout.shadow_dir), tan, w + 1.0)
              for pts, tan, prof, loop_h in wires]
    cov, roi = comp.coverage(shadow)
    if cov.size:
        cov = cv2.GaussianBlur(cov, (0, 0), 1.6)
        comp.value[0][roi] *= 1.0 - 0.22 * cov

    # balls: dull disc with darker rim (ring light); dark disc with a
    # specular spot and ring (coaxial) ------------------------------------------
    r = layout.ball_radius * scale
    _fill(masks[BALL], [_circle(x, y, max(r - 0.5, 0.5)) for x, y in starts], 1, aa=False)
    ball = mats['ball']
    disc = comp.coverage([_circle(x, y, r) for x, y in starts])
    roi = disc[1]
    comp.paint(disc, ball, (4.0, 4.0))
    inner = comp.coverage([_circle(x, y, 0.78 * r) for x, y in starts], roi)[0]
    rim = (np.clip(disc[0] - inner, 0, 1), roi)
    comp.paint(rim, (ball[0] * 0.72, ball[1] * 0.8), (3.0, 3.0))
    spot = comp.coverage([_circle(x + 0.12 * r, y - 0.12 * r, 0.42 * r) for x, y in starts],
                         roi)[0]
    ring = np.clip(comp.coverage([_circle(x, y, 0.86 * r) for x, y in starts], roi)[0] -
                   comp.coverage([_circle(x, y, 0.66 * r) for x, y in starts], roi)[0], 0, 1)
    comp.blend((np.maximum(spot, 0.55 * ring), roi), 1, mats['ball_spec'][1])
    comp.blend((spot, roi), 0, ball[0] * 1.15, weight=0.6)

    # wires: dark low-contrast body (ring light), specular centre line whose
    # strength follows the loop's flatness (coaxial) -------------------------
    val0 = np.zeros(shape, dtype=np.uint8)
    val1 = np.zeros(shape, dtype=np.uint8)
    thick = int(math.ceil(w)) + 3
    wire0 = mats['wire'][0]
    spec1 = mats['wire_spec'][1]
    bodies, lines = [], []
    for pts, tan, prof, loop_h in wires:
        bodies.append(_band(pts, tan, w))
        lines.append(_band(pts, tan, max(0.35 * w, 0.9)))
        step = np.maximum(np.linalg.norm(np.gradient(pts, axis=0), axis=1), 1e-6)
        flat = np.exp(-(np.abs(np.gradient(prof * loop_h)) / step / 0.35) ** 2)
        v0 = np.clip(wire0 * (0.85 + 0.3 * prof), 0, 255)
        v1 = np.clip(spec1 * (0.3 + 0.7 * flat) * (0.85 + 0.15 * prof), 0, 255)
        seg_pts = _fx(pts)
        for j in range(len(pts) - 1):
            seg = [seg_pts[j:j + 2]]
            cv2.polylines(val0, seg, False, float(v0[j]), thick, cv2.LINE_8, _SHIFT)
            cv2.polylines(val1, seg, False, float(v1[j]), thick, cv2.LINE_8, _SHIFT)
    _fill(masks[WIRE], [_band(pts, tan, max(w - 1.0, 0.6)) for pts, tan, _, _ in wires], 1,
          aa=False)
    body = comp.coverage(bodies)
    roi = body[1]
    comp.paint(body, (val0[roi].astype(np.float32), mats['wire'][1]), (2.0, 2.0))
    comp.blend(comp.coverage(lines, roi), 1, val1[roi].astype(np.float32))

    # wedges: the flattened wire end pressed onto the lead ------------------
    a_len, b_wid = layout.wedge_axes[0] * scale, layout.wedge_axes[1] * scale
    outer, inner_w, wedge_masks = [], [], []
    for (_, tan, _, _), end in zip(wires, ends):
        d = tan[-1]
        centre = end + d * 0.35 * a_len
        outer.append(_wedge(centre, d, a_len, b_wid))
        inner_w.append(_wedge(centre, d, 0.6 * a_len, 0.55 * b_wid))
        wedge_masks.append(_wedge(centre, d, a_len - 0.5, max(b_wid - 0.5, 0.5)))
    _fill(masks[WEDGE], wedge_masks, 1, aa=False)
    wedge = mats['wedge']
    layer = comp.coverage(outer)
    comp.paint(layer, wedge, (5.0, 6.0))
    comp.paint(comp.coverage(inner_w, layer[1]),
               (wedge[0] * 0.94, min(255.0, wedge[1] * 1.12)), (4.0, 5.0))

    img = _camera(comp, device, rng)
    mask = np.ascontiguousarray(masks.transpose(1, 2, 0))
    mask[device == 0] = 0
    return img, mask


def _camera(comp: _Composer, device: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Surface grain, vignetting, optics blur, gain/contrast, sensor noise, frame."""
    shape = comp.shape
    sigma_blur = rng.uniform(0.45, 1.0)
    # the surface grain is the same physical texture under both lights
    grain = cv2.GaussianBlur(rng.standard_normal(shape, dtype=np.float32), (0, 0), 0.8)
    grain *= np.float32(1.0 / max(float(grain.std()), 1e-6))
    xs = np.arange(shape[1], dtype=np.float32)[None, :]
    ys = np.arange(shape[0], dtype=np.float32)[:, None]
    norm = np.float32(1.0 / max(shape) ** 2)
    out = np.empty(shape + (2,), dtype=np.uint8)
    for c in range(2):
        img = comp.value[c] + comp.grain[c] * grain
        # vignetting: a smooth fall-off around an off-centre optical axis
        ocx = shape[1] * rng.uniform(0.35, 0.65)
        ocy = shape[0] * rng.uniform(0.35, 0.65)
        fall = np.float32(rng.uniform(0.08, 0.35))
        img *= 1.0 - fall * (((xs - ocx) ** 2) * norm + ((ys - ocy) ** 2) * norm)
        img = cv2.GaussianBlur(img, (0, 0), sigma_blur * rng.uniform(0.9, 1.1))
        gain, contrast = rng.uniform(0.85, 1.15), rng.uniform(0.88, 1.12)
        mean = float(cv2.mean(img, mask=device)[0])
        img = (img - np.float32(mean)) * np.float32(contrast * gain) + np.float32(mean * gain)
        np.maximum(img, 0.0, out=img)
        # read noise plus shot noise (variance growing with the signal)
        sigma = np.sqrt(np.float32(rng.uniform(1.0, 3.5) ** 2) +
                        np.float32(rng.uniform(0.15, 0.4) ** 2) * img)
        img += rng.standard_normal(shape, dtype=np.float32) * sigma
        out[:, :, c] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    out[device == 0] = 0
    return out



# ----------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------
class _OverlapCounter:
    """Accumulates class pixel counts and class co-occurrence over masks."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.total = 0
        self.cooc = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.any_other = np.zeros(num_classes, dtype=np.int64)

    def add(self, mask: np.ndarray) -> None:
        if mask.ndim != 3 or mask.shape[2] != self.num_classes:
            raise ValueError(f'expected an H x W x {self.num_classes} mask, got shape '
                             f'{mask.shape}')
        x = (mask.reshape(-1, self.num_classes) > 0).astype(np.float64)
        self.total += x.shape[0]
        self.cooc += np.rint(x.T @ x).astype(np.int64)
        multi = (x.sum(axis=1) > 1).astype(np.float64)
        self.any_other += np.rint(multi @ x).astype(np.int64)

    def stats(self, class_names: Sequence[str]) -> dict:
        names = list(class_names)
        pix = np.diag(self.cooc).astype(np.float64)
        labelled = max(float(pix.sum()), 1.0)

        def ratio(a: float, b: float) -> float:
            return round(float(a) / float(b), 6) if b > 0 else 0.0

        return dict(
            classes=names,
            total_pixels=int(self.total),
            class_pixels={n: int(pix[i]) for i, n in enumerate(names)},
            image_share={n: ratio(pix[i], self.total) for i, n in enumerate(names)},
            class_share={n: ratio(pix[i], labelled) for i, n in enumerate(names)},
            on={a: {b: ratio(self.cooc[i, j], pix[i]) for j, b in enumerate(names) if j != i}
                for i, a in enumerate(names)},
            on_any_other={n: ratio(self.any_other[i], pix[i]) for i, n in enumerate(names)})


def overlap_stats(mask, class_names: Optional[Sequence[str]] = None) -> dict:
    """Class pixel shares and how much of each class lies on the others.

    Args:
        mask (np.ndarray | Sequence[np.ndarray]): One H x W x C {0, 1}
            multi-label mask, or several (sizes may differ), pooled.
        class_names (Sequence[str], optional): C names; defaults to
            ``('wire', 'ball', 'wedge', 'epoxy')`` for C = 4, else
            ``'class0'``, ``'class1'``, ...

    Returns:
        dict: ``total_pixels``; per class ``class_pixels``, ``image_share``
        (of all pixels), ``class_share`` (of all labelled class pixels);
        ``on[a][b]``, the share of class ``a``'s pixels also labelled ``b``;
        and ``on_any_other[a]``, the share of ``a``'s pixels carrying any
        other class.

    Raises:
        ValueError: A mask is not H x W x C, or the masks disagree on C.
    """
    masks = [mask] if isinstance(mask, np.ndarray) else list(mask)
    if not masks:
        raise ValueError('overlap_stats needs at least one mask')
    num_classes = masks[0].shape[-1] if masks[0].ndim == 3 else -1
    if num_classes < 1:
        raise ValueError(f'expected H x W x C masks, got shape {masks[0].shape}')
    if class_names is None:
        class_names = (SYNTHETIC_CLASSES if num_classes == len(SYNTHETIC_CLASSES) else
                       [f'class{i}' for i in range(num_classes)])
    if len(class_names) != num_classes:
        raise ValueError(f'{len(class_names)} class names for masks with {num_classes} '
                         f'channels')
    counter = _OverlapCounter(num_classes)
    for m in masks:
        counter.add(np.asarray(m))
    return counter.stats(class_names)


def _has_black_border(img: np.ndarray) -> bool:
    """True if a full edge row or column of the image is exactly zero."""
    zero = ~np.any(img > 0, axis=2)
    return bool(zero[0].all() or zero[-1].all() or zero[:, 0].all() or zero[:, -1].all())


# ----------------------------------------------------------------------------
# data-set generation
# ----------------------------------------------------------------------------
def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f'{name} must be a non-negative integer, got {value!r}')
    return int(value)


def _write_pair(folder: str, stem: str, img: np.ndarray) -> None:
    write_image(osp.join(folder, f'{stem}_buffer0.png'), np.ascontiguousarray(img[:, :, 0]))
    write_image(osp.join(folder, f'{stem}_buffer1.png'), np.ascontiguousarray(img[:, :, 1]))


def _generate_into(root: str, counts: Dict[str, int], families: List[FamilyLayout],
                   seed: int, progress: bool) -> dict:
    from tqdm import tqdm

    split_codes = dict(train=0, val=1, test=2, pretrain=3)
    per_split = {}
    sizes: List[Tuple[int, int]] = []
    bordered = 0
    all_counter = _OverlapCounter(len(SYNTHETIC_CLASSES))
    bar = tqdm(total=sum(counts.values()), desc='synthetic AOI', unit='img',
               disable=not progress)
    try:
        for split in (*LABELLED_SPLITS, 'pretrain'):
            counter = _OverlapCounter(len(SYNTHETIC_CLASSES))
            for i in range(counts[split]):
                fam = families[i % len(families)]
                rng = np.random.default_rng([seed, 2, split_codes[split], i])
                img, mask = render_sample(fam, rng)
                sizes.append(img.shape[:2])
                bordered += _has_black_border(img)
                if split == 'pretrain':
                    _write_pair(osp.join(root, 'pretrain', fam.name), f'{fam.name}_pre{i:04d}',
                                img)
                else:
                    stem = f'{fam.name}_{split}{i:04d}'
                    _write_pair(osp.join(root, 'images', split), stem, img)
                    write_multilabel_mask(osp.join(root, 'labels', split, f'{stem}.png'), mask)
                    counter.add(mask)
                    all_counter.add(mask)
                bar.update(1)
            if split != 'pretrain':
                per_split[split] = dict(images=counts[split],
                                        **counter.stats(SYNTHETIC_CLASSES))
    finally:
        bar.close()
    hw = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    return dict(
        splits=per_split,
        labelled=all_counter.stats(SYNTHETIC_CLASSES),
        image_sizes=dict(min_hw=hw.min(0).tolist() if len(hw) else None,
                         max_hw=hw.max(0).tolist() if len(hw) else None,
                         black_border_share=round(bordered / max(len(hw), 1), 6)))


def _move_into_place(tmp: str, out_root: str, overwrite: bool) -> None:
    if osp.isdir(out_root) and not os.listdir(out_root):
        os.rmdir(out_root)
    if osp.lexists(out_root):
        if not overwrite:
            raise FileExistsError(f'{out_root} appeared while the synthetic benchmark was '
                                  f'being generated; refusing to overwrite it')
        trash = tempfile.mkdtemp(prefix=f'.{osp.basename(out_root)}.old-',
                                 dir=osp.dirname(out_root))
        os.replace(out_root, osp.join(trash, 'old'))
        os.replace(tmp, out_root)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out_root)


def generate_synthetic_aoi(out_root: str,
                           num_train: int = 40,
                           num_val: int = 10,
                           num_test: int = 16,
                           num_pretrain: int = 60,
                           num_families: int = 6,
                           size_range: Sequence[int] = (384, 1024),
                           single_device: bool = False,
                           seed: int = 0,
                           progress: bool = True,
                           overwrite: bool = False) -> dict:
    """Generate the synthetic two-light AOI benchmark into ``out_root``.

    Everything is written into a temporary sibling folder that is renamed to
    ``out_root`` at the end, so an interrupted run leaves nothing behind. The
    output is byte-identical for identical arguments. Image ``i`` of a split
    shows family ``i mod num_families``, so all families appear in every split
    (as different renderings).

    Args:
        out_root (str): Folder to create (see the module docstring for the
            layout).
        num_train (int): Labelled training images.
        num_val (int): Labelled validation images.
        num_test (int): Labelled test images.
        num_pretrain (int): Unlabelled pre-training images, written to
            ``pretrain/<family>/``.
        num_families (int): Number of device designs.
        size_range (Sequence[int]): (min, max) of an image side; width and
            height are drawn independently.
        single_device (bool): Draw every split from one family (the paper's
            single-device setting); ``num_families`` is then ignored.
        seed (int): Seed of all randomness.
        progress (bool): Show a tqdm progress bar.
        overwrite (bool): Replace a non-empty existing ``out_root``.

    Returns:
        dict: The manifest also written to ``out_root/synthetic_aoi.json``:
        parameters, counts, families, per-split class pixel shares and
        overlap statistics (see :func:`overlap_stats`), image-size summary.

    Raises:
        ValueError: An argument is out of range.
        FileExistsError: ``out_root`` exists, is not empty and ``overwrite``
            is False, or it is a file.
    """
    counts = dict(train=_check_count('num_train', num_train),
                  val=_check_count('num_val', num_val),
                  test=_check_count('num_test', num_test),
                  pretrain=_check_count('num_pretrain', num_pretrain))
    n_fam = 1 if single_device else _check_count('num_families', num_families)
    if n_fam < 1:
        raise ValueError(f'num_families must be >= 1, got {num_families!r}')
    lo, hi = _check_size_range(size_range)
    seed = _check_count('seed', seed)
    out_root = osp.abspath(out_root)
    if osp.lexists(out_root) and not osp.isdir(out_root):
        raise FileExistsError(f'{out_root} exists and is not a folder; cannot generate the '
                              f'synthetic AOI benchmark there')
    if osp.isdir(out_root) and os.listdir(out_root) and not overwrite:
        raise FileExistsError(f'{out_root} exists and is not empty; refusing to overwrite it '
                              f'(pass overwrite=True / --overwrite, or choose another folder)')

    families = [make_family_layout(np.random.default_rng([seed, 1, f]), f, (lo, hi))
                for f in range(n_fam)]
    parent = osp.dirname(out_root)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out_root)}.tmp-', dir=parent)
    try:
        os.chmod(tmp, 0o755)
        stats = _generate_into(tmp, counts, families, seed, progress)
        manifest = dict(
            format='aoissl_mm synthetic AOI benchmark', version=MANIFEST_VERSION,
            parameters=dict(num_train=counts['train'], num_val=counts['val'],
                            num_test=counts['test'], num_pretrain=counts['pretrain'],
                            num_families=n_fam, size_range=[lo, hi],
                            single_device=bool(single_device), seed=seed),
            classes=list(SYNTHETIC_CLASSES),
            counts=counts,
            layout=dict(images='images/<split>/<stem>_buffer{0,1}.png',
                        labels='labels/<split>/<stem>.png (bit c <=> class c)',
                        pretrain='pretrain/<family>/<stem>_buffer{0,1}.png'),
            families=[f.summary() for f in families],
            **stats)
        write_text(osp.join(tmp, MANIFEST_NAME),
                   json.dumps(manifest, indent=2, sort_keys=True) + '\n')
        _move_into_place(tmp, out_root, overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return manifest


def ensure_synthetic_aoi(data_root: str, **kwargs) -> str:
    """Generate the synthetic benchmark into ``data_root`` unless it is there.

    A no-op when ``data_root/synthetic_aoi.json`` exists. If several
    processes race, the first to finish wins and the others return its data.

    Args:
        data_root (str): Data root of the configs.
        **kwargs: Passed to :func:`generate_synthetic_aoi`.

    Returns:
        str: ``data_root``.
    """
    manifest = osp.join(data_root, MANIFEST_NAME)
    if osp.isfile(manifest):
        return data_root
    from mmengine.logging import print_log
    print_log(f'aoissl_mm: no data in {osp.abspath(data_root)}; generating the synthetic '
              f'AOI benchmark there ({kwargs or "default arguments"})', logger='current')
    try:
        generate_synthetic_aoi(data_root, **kwargs)
    except OSError:
        if osp.isfile(manifest):   # another process generated it meanwhile
            return data_root
        raise
    return data_root
