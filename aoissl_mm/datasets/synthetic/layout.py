"""Device families: one random wire-bonded device design per family.

A :class:`FamilyLayout` fixes die, bond pads, lead fingers, wire routing,
epoxy outline and material intensities; :func:`make_family_layout` draws one
from a random generator. The order of the random draws is part of the
benchmark's definition (the output is byte-identical per seed), so the helpers
below are called in a fixed order and must keep their internal draw order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

__all__ = ['FamilyLayout', 'check_size_range', 'make_family_layout']


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


@dataclass
class _BondFrame:
    """Die and bond geometry the pads, leads and wire ends are placed in."""

    dw: float
    dh: float
    small: float
    die_center: np.ndarray
    die_half: np.ndarray
    pad_half: float
    wedge_axes: Tuple[float, float]
    lead_gap: float
    pitch: float
    fan: float


def check_size_range(size_range: Sequence[int]) -> Tuple[int, int]:
    """Validate an image-side range.

    Args:
        size_range (Sequence[int]): (min, max) image side.

    Returns:
        Tuple[int, int]: ``(min, max)`` as integers.

    Raises:
        ValueError: Not two values, or not ``96 <= min <= max``.
    """
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

    Raises:
        ValueError: ``size_range`` is not ``(min, max)`` with ``96 <= min <= max``.
    """
    lo, hi = check_size_range(size_range)
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
    frame = _BondFrame(dw=dw, dh=dh, small=small, die_center=die_center, die_half=die_half,
                       pad_half=pad_half, wedge_axes=wedge_axes, lead_gap=lead_gap, pitch=pitch,
                       fan=fan)

    pads, ends, leads = _bond_sites(rng, frame)
    bends, loop_heights = _wire_routing(rng, pads, ends)
    rects, levels = _die_circuitry(rng, die_half)
    margins = _epoxy_margins(rng, fillet)
    materials = _materials(rng)
    theta = rng.uniform(0, 2 * np.pi)
    return FamilyLayout(
        family_id=int(family_id), name=f'fam{int(family_id):02d}', size_range=(lo, hi),
        device_size=(float(dw), float(dh)), die_center=die_center, die_half=die_half,
        circuit_rects=rects, circuit_levels=levels, pads=pads, pad_half=float(pad_half),
        wire_ends=ends, wire_bends=bends, loop_heights=loop_heights, leads=leads,
        wire_width=wire_w, ball_radius=float(ball_r), wedge_axes=wedge_axes,
        epoxy_margins=margins, epoxy_power=float(rng.uniform(3.5, 6.0)), materials=materials,
        shadow_dir=np.array([np.cos(theta), np.sin(theta)]))


def _bond_sites(rng: np.random.Generator,
                frame: _BondFrame) -> Tuple[np.ndarray, np.ndarray, List[np.ndarray]]:
    """Bond pads on the die edges, wire end points and lead fingers.

    Each die side may be unused; at least two are used.

    Returns:
        Tuple: pads (N, 2), wire ends (N, 2) and N lead polygons (4, 2).
    """
    sides = [s for s in range(4) if rng.random() < 0.8]
    if len(sides) < 2:
        sides = sorted(rng.choice(4, size=2, replace=False).tolist())
    pads, ends, leads = [], [], []
    edge_inset = frame.pad_half * float(rng.uniform(1.3, 1.8))
    finger_len = float(rng.uniform(0.3, 0.55))
    for side in sides:
        for pad, end, quad in _side_bonds(rng, frame, side, edge_inset, finger_len):
            pads.append(pad)
            ends.append(end)
            leads.append(quad)
    return np.asarray(pads, dtype=np.float64), np.asarray(ends, dtype=np.float64), leads


def _side_bonds(rng: np.random.Generator, frame: _BondFrame, side: int, edge_inset: float,
                finger_len: float) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(pad, wire end, lead polygon) of every bond on one die side (0..3)."""
    die_center, die_half, pitch, fan = frame.die_center, frame.die_half, frame.pitch, frame.fan
    small = frame.small
    axis = side % 2                         # 0: left/right edge (normal along x)
    sign = -1.0 if side < 2 else 1.0
    normal = np.zeros(2)
    normal[axis] = sign
    lat_axis = 1 - axis
    # keep a pitch free at the die corners so pads of adjacent sides never touch
    half_lat = die_half[lat_axis] - edge_inset - max(pitch, 3.0 * frame.pad_half)
    count = int(min(12, max(1, np.floor(2 * half_lat / pitch) + 1)))
    count = int(rng.integers(max(1, count // 2), count + 1))
    lat = (np.linspace(-half_lat, half_lat, count) if count > 1 else np.zeros(1))
    lat = lat + rng.uniform(-0.08, 0.08, size=count) * pitch
    tip_dist = die_half[axis] + frame.lead_gap
    dev_half = 0.5 * (frame.dw if axis == 0 else frame.dh)
    lat_cap = die_half[lat_axis] + frame.lead_gap
    finger_w = min(pitch * fan * 0.62, 0.5 * lat_cap)
    bonds = []
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
        end = tip + normal * (frame.wedge_axes[0] * 1.2 + rng.uniform(0.0, 0.12) * small)
        end[lat_axis] += rng.uniform(-0.12, 0.12) * finger_w
        bonds.append((pad, end, quad))
    return bonds


def _wire_routing(rng: np.random.Generator, pads: np.ndarray,
                  ends: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Lateral Bezier bends (N, 2) and loop heights (N,) of the wires."""
    n_wires = len(pads)
    bend_scale = float(rng.uniform(0.0, 0.09))
    bends = rng.normal(0.0, 1.0, size=(n_wires, 2)) * bend_scale
    bends[:, 1] = 0.6 * bends[:, 1] + 0.4 * bends[:, 0]
    lengths = np.linalg.norm(ends - pads, axis=1)
    loop_heights = lengths * rng.uniform(0.25, 0.45) * rng.uniform(0.85, 1.15, size=n_wires)
    return bends, loop_heights


def _die_circuitry(rng: np.random.Generator,
                   die_half: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Die circuitry (blocks, memory arrays, a pad ring): rectangles and levels."""
    n_rects = int(rng.integers(14, 40))
    hw, hh = die_half
    x0 = rng.uniform(-hw * 0.85, hw * 0.75, n_rects)
    y0 = rng.uniform(-hh * 0.85, hh * 0.75, n_rects)
    x1 = np.minimum(x0 + rng.uniform(0.06, 0.55, n_rects) * hw, hw * 0.85)
    y1 = np.minimum(y0 + rng.uniform(0.06, 0.55, n_rects) * hh, hh * 0.85)
    rects = np.stack([x0, y0, x1, y1], axis=1)
    levels = np.stack([rng.normal(0, 9, n_rects), rng.normal(0, 22, n_rects)], axis=1)
    return rects, levels


def _epoxy_margins(rng: np.random.Generator, fillet: float) -> np.ndarray:
    """Epoxy fillet: a smooth random fillet width around the die (96 angles)."""
    n_ang = 96
    ang = np.linspace(0, 2 * np.pi, n_ang, endpoint=False)
    wobble = np.zeros(n_ang)
    for k in range(1, 7):
        wobble += rng.normal(0, 0.45 / k) * np.cos(k * ang + rng.uniform(0, 2 * np.pi))
    return fillet * np.clip(1.0 + wobble + rng.normal(0, 0.05, n_ang), 0.35, 2.2)


def _materials(rng: np.random.Generator) -> Dict[str, Tuple[float, float]]:
    """Base intensity of each material under (ring light, coaxial light)."""

    def level(lo_: float, hi_: float) -> float:
        return float(rng.uniform(lo_, hi_))

    return dict(
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
