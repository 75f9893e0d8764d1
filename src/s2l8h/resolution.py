"""How a sensor with coarser pixels sees an image: the Gaussian point-spread function with
modulation :data:`MTF_AT_NYQUIST` at the coarse Nyquist frequency, then the exact area
average (the reduced-resolution protocol's degradation, DESIGN.md). Used by the simulation
of Landsat from Sentinel-2 (``s2l8h.data``), the real-Landsat Wald protocol and the
consistency check of outputs (``s2l8h.inference``); numpy and scipy only."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

MTF_AT_NYQUIST = 0.3


def psf_sigma(pixel_size: float) -> float:
    """σ (metres) of the Gaussian PSF with modulation 0.3 at the Nyquist frequency of
    ``pixel_size`` (14.8 m for 30 m, 7.4 m for 15 m)."""
    return math.sqrt(-math.log(MTF_AT_NYQUIST) / 2) / (math.pi * 0.5 / pixel_size)


def fill_invalid(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(B, H, W) with the pixels outside ``valid`` (H, W) set to each band's valid mean."""
    means = np.array([band[valid].mean() for band in image])[:, None, None]
    return np.where(valid, image, means)


def reduce_resolution(image: np.ndarray, valid: np.ndarray, pixel: float, factor: int = 3
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(B, H, W) on a ``pixel`` m grid as a sensor with ``factor`` times larger pixels sees
    it: the Gaussian PSF with modulation 0.3 at the coarse Nyquist frequency, then the
    ``factor`` x ``factor`` area average (the grid cropped to whole coarse pixels). Invalid
    pixels are filled with band means first; a coarse pixel is valid when all its fine ones
    are. Returns float64 (B, H // factor, W // factor) and that mask."""
    sigma = psf_sigma(factor * pixel) / pixel
    filled = fill_invalid(image.astype(np.float64), valid)
    blurred = np.stack([ndimage.gaussian_filter(band, sigma, mode="nearest")
                        for band in filled])
    rows, cols = image.shape[-2] // factor, image.shape[-1] // factor
    cropped = blurred[:, :rows * factor, :cols * factor]
    reduced = cropped.reshape(-1, rows, factor, cols, factor).mean(axis=(2, 4))
    reduced_valid = valid[:rows * factor, :cols * factor].reshape(
        rows, factor, cols, factor).all(axis=(1, 3))
    return reduced, reduced_valid
