"""The camera model of the synthetic renderer: optics and sensor on top of the scene."""
from __future__ import annotations

import cv2
import numpy as np

from .drawing import Composer

__all__ = ['camera']


def camera(comp: Composer, device: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Surface grain, vignetting, optics blur, gain/contrast, sensor noise, frame.

    Args:
        comp (Composer): The painted scene (intensities and grain amplitudes).
        device (np.ndarray): uint8 H x W device mask; outside it the image is
            exactly zero (the black frame).
        rng (np.random.Generator): Source of randomness.

    Returns:
        np.ndarray: H x W x 2 uint8 image (ring light, coaxial light).
    """
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
