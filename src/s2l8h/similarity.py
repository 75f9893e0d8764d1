"""Masked MSE, PSNR and SSIM: the image similarity both the patch filter (:mod:`s2l8h.data`)
and the evaluation (:mod:`s2l8h.evaluate.metrics`, which re-exports them) use.

Conventions: images are reflectance arrays (bands, H, W) or (H, W); ``valid`` (H, W) selects
the pixels that count (default: all finite pixels of both images). ``data_range`` is 1 for
reflectance and 2 for normalized indices in [-1, 1].

- MSE in reflectance squared; PSNR = 10·log10(data_range² / MSE) dB (scikit-image's
  definition).
- SSIM: scikit-image's ``structural_similarity`` map (7 x 7 uniform window, K1 0.01, K2 0.03),
  averaged over valid pixels whose whole window is valid and at least 3 pixels from the image
  border (scikit-image crops the same border); invalid pixels are filled before filtering.

Imports nothing of s2l8h, so any layer may use it.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_erosion
from skimage.metrics import structural_similarity

SSIM_WINDOW = 7


def valid_mask(prediction: np.ndarray, reference: np.ndarray,
               valid: np.ndarray | None) -> np.ndarray:
    """(H, W) pixels finite in both images (every band) and in ``valid``; an error if none."""
    if prediction.shape != reference.shape:
        raise ValueError(f"shapes differ: {prediction.shape} vs {reference.shape}")
    finite = np.isfinite(prediction) & np.isfinite(reference)
    if finite.ndim == 3:
        finite = finite.all(axis=0)
    mask = finite if valid is None else finite & valid
    if not mask.any():
        raise ValueError("no valid pixel to compare")
    return mask


def pixels(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The values of ``image`` at ``mask``: (bands, N) or (N,)."""
    return image[..., mask]


def mse(prediction: np.ndarray, reference: np.ndarray,
        valid: np.ndarray | None = None) -> float:
    """Mean squared error over valid pixels (and bands), in reflectance squared."""
    mask = valid_mask(prediction, reference, valid)
    difference = pixels(prediction, mask).astype(np.float64) - pixels(reference, mask)
    return float(np.mean(difference**2))


def psnr(prediction: np.ndarray, reference: np.ndarray, valid: np.ndarray | None = None,
         data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over valid pixels; ``inf`` for identical images."""
    error = mse(prediction, reference, valid)
    return float("inf") if error == 0 else float(10 * np.log10(data_range**2 / error))


def ssim(prediction: np.ndarray, reference: np.ndarray, valid: np.ndarray | None = None,
         data_range: float = 1.0) -> float:
    """Mean SSIM (unitless, at most 1) over the valid pixels whose whole window is valid; for a
    band stack, the mean over bands. NaN where no such pixel exists (a small or scattered
    mask), as a mean over no pixels."""
    mask = valid_mask(prediction, reference, valid)
    if prediction.ndim == 3:
        return float(np.mean([ssim(p, r, mask, data_range)
                              for p, r in zip(prediction, reference, strict=True)]))
    if min(mask.shape) < SSIM_WINDOW:  # no whole window fits at all
        return float("nan")
    reference64 = np.where(mask, reference, np.nanmean(reference[mask])).astype(np.float64)
    prediction64 = np.where(mask, prediction, reference64).astype(np.float64)
    _, ssim_map = structural_similarity(reference64, prediction64, data_range=data_range,
                                        win_size=SSIM_WINDOW, full=True)
    border = (SSIM_WINDOW - 1) // 2
    inner = np.zeros_like(mask)
    inner[border:-border, border:-border] = True
    # Pixels whose window touches an invalid pixel are left out as well.
    usable = binary_erosion(mask, np.ones((SSIM_WINDOW, SSIM_WINDOW)), border_value=1) & inner
    if not usable.any():
        return float("nan")
    return float(ssim_map[usable].mean())


__all__ = ["SSIM_WINDOW", "mse", "pixels", "psnr", "ssim", "valid_mask"]
