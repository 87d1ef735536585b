"""Rendering one two-light inspection image of a device family, with its labels.

:func:`render_sample` paints the materials back to front (substrate, leads,
epoxy, die, pads, wire shadows, balls, wires, wedges) into a
:class:`~.drawing.Composer`, draws the label masks alongside, and passes the
result through :func:`~.camera.camera`. The order of the random draws is part
of the benchmark's definition, so the painting steps run in a fixed order.
"""
from __future__ import annotations

import math
from typing import List, Tuple

import cv2
import numpy as np

from ..metainfo import AOI_CLASSES
from .camera import camera
from .drawing import (
    SHIFT,
    Composer,
    apply_affine,
    band,
    bezier,
    circle,
    fill,
    loop_profile,
    rect,
    smooth_noise,
    to_fixed_point,
    wedge_polygon,
)
from .layout import FamilyLayout

__all__ = ['WIRE', 'BALL', 'WEDGE', 'EPOXY', 'render_sample']

#: Mask channels of the classes the renderer draws (positions in ``AOI_CLASSES``).
WIRE, BALL, WEDGE, EPOXY = (AOI_CLASSES.index(n) for n in ('wire', 'ball', 'wedge', 'epoxy'))

#: Per wire: centre line (n, 2), unit tangents (n, 2), loop profile (n,), loop height.
WirePath = Tuple[np.ndarray, np.ndarray, np.ndarray, float]


def render_sample(layout: FamilyLayout,
                  rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Render one inspection image of a device family and its labels.

    Args:
        layout (FamilyLayout): The device design (see
            :func:`~.layout.make_family_layout`).
        rng (np.random.Generator): Source of the per-image variation (pose,
            frame, unit variation, lighting, blur, noise).

    Returns:
        Tuple[np.ndarray, np.ndarray]: The image, H x W x 2 uint8
        (channel 0 = buffer0 ring light, 1 = buffer1 coaxial light), and the
        multi-label mask, H x W x C uint8 {0, 1} in the class order of
        ``AOI_CLASSES`` (``('wire', 'ball', 'wedge', 'epoxy')``).
    """
    mat, width, height = _pose(layout, rng)
    shape = (height, width)
    scale = float(np.hypot(mat[0, 0], mat[1, 0]))
    comp = Composer(shape)
    masks = np.zeros((len(AOI_CLASSES),) + shape, dtype=np.uint8)

    device, low = _paint_substrate(comp, layout, mat, rng)
    _paint_leads(comp, layout, mat, rng)
    die_poly = _paint_epoxy(comp, masks, layout, mat, scale, rng)
    _paint_die(comp, layout, mat, die_poly, low)
    _paint_pads(comp, layout, mat)
    wires = _wire_paths(layout, mat, scale, rng)
    _paint_shadows(comp, layout, wires, scale)
    _paint_balls(comp, masks, layout, wires, scale)
    _paint_wires(comp, masks, layout, wires, scale)
    _paint_wedges(comp, masks, layout, wires, scale)

    img = camera(comp, device, rng)
    mask = np.ascontiguousarray(masks.transpose(1, 2, 0))
    mask[device == 0] = 0
    return img, mask


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


def _wire_paths(layout: FamilyLayout, mat: np.ndarray, scale: float,
                rng: np.random.Generator) -> List[WirePath]:
    """Per wire: centre line, tangents, loop profile (0..1), loop height."""
    starts = apply_affine(mat, layout.pads)
    ends = apply_affine(mat, layout.wire_ends)
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
        pts, tan = bezier(a, c1, c2, b, n)
        wires.append((pts, tan, loop_profile(np.linspace(0.0, 1.0, n)),
                      float(layout.loop_heights[i] * scale)))
    return wires


def _paint_substrate(comp: Composer, layout: FamilyLayout, mat: np.ndarray,
                     rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Device area (substrate); everything outside stays exactly zero.

    Returns:
        Tuple[np.ndarray, np.ndarray]: The uint8 device mask (1 inside) and
        the low-frequency noise field, reused for the die.
    """
    shape = comp.shape
    height, width = shape
    dw, dh = layout.device_size
    device = np.zeros(shape, dtype=np.uint8)
    fill(device, [apply_affine(mat, rect(0.0, 0.0, dw / 2, dh / 2))], 1, aa=False)
    low = smooth_noise(rng, shape, cell=max(24.0, 0.08 * max(shape)))
    sub = layout.materials['substrate']
    full = (np.ones(shape, np.float32), (slice(0, height), slice(0, width)))
    comp.paint(full, (sub[0] + 6.0 * low, sub[1] + 4.0 * low), (5.0, 3.0))
    return device, low


def _paint_leads(comp: Composer, layout: FamilyLayout, mat: np.ndarray,
                 rng: np.random.Generator) -> None:
    """Lead fingers (plated metal: flat, bright in the coaxial light)."""
    layer = comp.coverage([apply_affine(mat, q) for q in layout.leads])
    plate = smooth_noise(rng, comp.shape, cell=12.0)
    lead = layout.materials['lead']
    comp.paint(layer, (lead[0] + 5.0 * plate, lead[1] + 14.0 * plate), (6.0, 9.0))


def _paint_epoxy(comp: Composer, masks: np.ndarray, layout: FamilyLayout, mat: np.ndarray,
                 scale: float, rng: np.random.Generator) -> np.ndarray:
    """Epoxy fillet, its outline varying from unit to unit; labels the epoxy.

    Returns:
        np.ndarray: The die polygon in image coordinates.
    """
    n_ang = layout.epoxy_margins.size
    ang = np.linspace(0, 2 * np.pi, n_ang, endpoint=False)
    unit = 1.0 + 0.07 * np.cos(ang * rng.integers(2, 5) + rng.uniform(0, 2 * np.pi))
    margins = layout.epoxy_margins * unit * rng.uniform(0.93, 1.07)
    p = 2.0 / layout.epoxy_power
    cos, sin = np.cos(ang), np.sin(ang)
    outline = np.stack([np.sign(cos) * np.abs(cos) ** p * (layout.die_half[0] + margins),
                        np.sign(sin) * np.abs(sin) ** p * (layout.die_half[1] + margins)], 1)
    outline = apply_affine(mat, outline + layout.die_center)
    die_poly = apply_affine(mat, rect(*layout.die_center, *layout.die_half))
    fill(masks[EPOXY], [outline], 1, aa=False)
    fill(masks[EPOXY], [die_poly], 0, aa=False)
    layer = comp.coverage([outline])
    roi = layer[1]
    # the fillet's meniscus: brighter (steeper) near the die
    off_die = np.ones(comp.shape, np.uint8)
    fill(off_die, [die_poly], 0, aa=False)
    dist = cv2.distanceTransform(np.ascontiguousarray(off_die[roi]), cv2.DIST_L2, 3)
    fillet = max(0.35 * float(np.median(layout.epoxy_margins)) * scale, 1.0)
    slope = np.exp(-dist / np.float32(fillet))
    epx = layout.materials['epoxy']
    comp.paint(layer, (epx[0] * (0.82 + 0.3 * slope), epx[1] * (0.9 + 0.35 * slope)), (9.0, 6.0))
    return die_poly


def _paint_die(comp: Composer, layout: FamilyLayout, mat: np.ndarray, die_poly: np.ndarray,
               low: np.ndarray) -> None:
    """Die with circuitry (rectangles of their own intensity offsets)."""
    ids = np.zeros(comp.shape, dtype=np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(layout.circuit_rects):
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) + layout.die_center
        fill(ids, [apply_affine(mat, corners)], k + 1, aa=False)
    lut = np.zeros((2, 256), dtype=np.float32)
    lut[:, 1:1 + len(layout.circuit_levels)] = layout.circuit_levels.T
    layer = comp.coverage([die_poly])
    roi = layer[1]
    die = layout.materials['die']
    die_ids = ids[roi]
    comp.paint(layer, (die[0] + lut[0][die_ids], die[1] + lut[1][die_ids] + 6.0 * low[roi]),
               (3.0, 5.0))


def _paint_pads(comp: Composer, layout: FamilyLayout, mat: np.ndarray) -> None:
    """Square bond pads."""
    ph = layout.pad_half
    comp.paint(comp.coverage([apply_affine(mat, rect(x, y, ph, ph)) for x, y in layout.pads]),
               layout.materials['pad'], (3.0, 4.0))


def _paint_shadows(comp: Composer, layout: FamilyLayout, wires: List[WirePath],
                   scale: float) -> None:
    """Soft wire shadows in the ring light (buffer0 only; none in coaxial)."""
    w = layout.wire_width * scale
    shadow = [band(pts + np.outer(prof * loop_h * 0.25, layout.shadow_dir), tan, w + 1.0)
              for pts, tan, prof, loop_h in wires]
    cov, roi = comp.coverage(shadow)
    if cov.size:
        cov = cv2.GaussianBlur(cov, (0, 0), 1.6)
        comp.value[0][roi] *= 1.0 - 0.22 * cov


def _paint_balls(comp: Composer, masks: np.ndarray, layout: FamilyLayout,
                 wires: List[WirePath], scale: float) -> None:
    """Balls: a dull disc with darker rim (ring light); a dark disc with a
    specular spot and ring (coaxial); labels the balls."""
    starts = [pts[0] for pts, _, _, _ in wires]
    r = layout.ball_radius * scale
    fill(masks[BALL], [circle(x, y, max(r - 0.5, 0.5)) for x, y in starts], 1, aa=False)
    ball = layout.materials['ball']
    disc = comp.coverage([circle(x, y, r) for x, y in starts])
    roi = disc[1]
    comp.paint(disc, ball, (4.0, 4.0))
    inner = comp.coverage([circle(x, y, 0.78 * r) for x, y in starts], roi)[0]
    rim = (np.clip(disc[0] - inner, 0, 1), roi)
    comp.paint(rim, (ball[0] * 0.72, ball[1] * 0.8), (3.0, 3.0))
    spot = comp.coverage([circle(x + 0.12 * r, y - 0.12 * r, 0.42 * r) for x, y in starts],
                         roi)[0]
    ring = np.clip(comp.coverage([circle(x, y, 0.86 * r) for x, y in starts], roi)[0] -
                   comp.coverage([circle(x, y, 0.66 * r) for x, y in starts], roi)[0], 0, 1)
    comp.blend((np.maximum(spot, 0.55 * ring), roi), 1, layout.materials['ball_spec'][1])
    comp.blend((spot, roi), 0, ball[0] * 1.15, weight=0.6)


def _paint_wires(comp: Composer, masks: np.ndarray, layout: FamilyLayout,
                 wires: List[WirePath], scale: float) -> None:
    """Wires: a dark low-contrast body (ring light) and a specular centre line
    whose strength follows the loop's flatness (coaxial); labels the wires."""
    mats = layout.materials
    w = layout.wire_width * scale
    val0 = np.zeros(comp.shape, dtype=np.uint8)
    val1 = np.zeros(comp.shape, dtype=np.uint8)
    thick = int(math.ceil(w)) + 3
    wire0 = mats['wire'][0]
    spec1 = mats['wire_spec'][1]
    bodies, lines = [], []
    for pts, tan, prof, loop_h in wires:
        bodies.append(band(pts, tan, w))
        lines.append(band(pts, tan, max(0.35 * w, 0.9)))
        step = np.maximum(np.linalg.norm(np.gradient(pts, axis=0), axis=1), 1e-6)
        flat = np.exp(-(np.abs(np.gradient(prof * loop_h)) / step / 0.35) ** 2)
        v0 = np.clip(wire0 * (0.85 + 0.3 * prof), 0, 255)
        v1 = np.clip(spec1 * (0.3 + 0.7 * flat) * (0.85 + 0.15 * prof), 0, 255)
        seg_pts = to_fixed_point(pts)
        for j in range(len(pts) - 1):
            seg = [seg_pts[j:j + 2]]
            cv2.polylines(val0, seg, False, float(v0[j]), thick, cv2.LINE_8, SHIFT)
            cv2.polylines(val1, seg, False, float(v1[j]), thick, cv2.LINE_8, SHIFT)
    fill(masks[WIRE], [band(pts, tan, max(w - 1.0, 0.6)) for pts, tan, _, _ in wires], 1,
         aa=False)
    body = comp.coverage(bodies)
    roi = body[1]
    comp.paint(body, (val0[roi].astype(np.float32), mats['wire'][1]), (2.0, 2.0))
    comp.blend(comp.coverage(lines, roi), 1, val1[roi].astype(np.float32))


def _paint_wedges(comp: Composer, masks: np.ndarray, layout: FamilyLayout,
                  wires: List[WirePath], scale: float) -> None:
    """Wedges: the flattened wire end pressed onto the lead; labels the wedges."""
    a_len, b_wid = layout.wedge_axes[0] * scale, layout.wedge_axes[1] * scale
    outer, inner_w, wedge_masks = [], [], []
    for pts, tan, _, _ in wires:
        d = tan[-1]
        centre = pts[-1] + d * 0.35 * a_len
        outer.append(wedge_polygon(centre, d, a_len, b_wid))
        inner_w.append(wedge_polygon(centre, d, 0.6 * a_len, 0.55 * b_wid))
        wedge_masks.append(wedge_polygon(centre, d, a_len - 0.5, max(b_wid - 0.5, 0.5)))
    fill(masks[WEDGE], wedge_masks, 1, aa=False)
    wedge = layout.materials['wedge']
    layer = comp.coverage(outer)
    comp.paint(layer, wedge, (5.0, 6.0))
    comp.paint(comp.coverage(inner_w, layer[1]),
               (wedge[0] * 0.94, min(255.0, wedge[1] * 1.12)), (4.0, 5.0))
