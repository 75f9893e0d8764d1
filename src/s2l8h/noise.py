"""Sensor noise, defined once for every layer: OLI's nominal noise model and an estimate of an
image's own noise from its weak-texture patches.

Both give the noise variance of a band as a function of its level, σ²(ρ) = a + b · ρ
(reflectance; the shot noise of a photon-counting detector grows with the signal). The
simulation (:mod:`s2l8h.data.simulate`) adds OLI's noise; the input noise filter
(:mod:`s2l8h.inference.denoise`) estimates the scene's and never goes below a multiple of
OLI's.
"""

from __future__ import annotations

import math

import numpy as np

#: OLI signal-to-noise ratio at typical radiance (Morfitt et al. 2015, "Landsat-8 Operational
#: Land Imager (OLI) radiometric performance on-orbit", Remote Sens. 7, 2208-2237, table 5):
#: blue, green, red, NIR, SWIR1, SWIR2, then pan.
OLI_SNR_TYPICAL = (364.0, 302.0, 227.0, 204.0, 265.0, 334.0, 149.0)
#: TOA reflectance of OLI's typical radiance L_typ (40, 30, 22, 14, 4.0, 1.7, 23 W/m²/sr/µm;
#: ρ = π L / ESUN with ESUN 2067, 1893, 1603, 972, 245, 79.7, 1723 W/m²/µm).
OLI_REFLECTANCE_TYPICAL = (0.061, 0.050, 0.043, 0.045, 0.051, 0.067, 0.042)
#: The pan's index in :data:`OLI_SNR_TYPICAL` (0-5 are the six bands of a model's input).
OLI_PAN = 6

#: :func:`weak_texture_noise`: patch side (pixels), the share of the calmest patches kept, the
#: brightness levels its noise model is fitted over and the least calm patches per level (in
#: multiples of the patch's pixel count).
NOISE_PATCH = 5
WEAK_TEXTURE_SHARE = 0.2
NOISE_LEVELS = 4
MIN_CALM_PATCHES = 10
#: The least side (pixels) of a square image with enough calm patches for one level (40).
MIN_NOISE_MODEL_SIDE = NOISE_PATCH - 1 + math.ceil(
    math.sqrt(MIN_CALM_PATCHES * NOISE_PATCH ** 2 / WEAK_TEXTURE_SHARE))


def oli_noise_model(band: int) -> tuple[float, float]:
    """OLI's noise variance model (a, b) for band index ``band`` (0-5 the six bands, 6 the
    pan): σ²(ρ) = a + b · ρ = σ_typ² · (0.5 + 0.5 ρ / ρ_typ), σ_typ = ρ_typ / SNR_typ."""
    typical = OLI_REFLECTANCE_TYPICAL[band]
    variance = (typical / OLI_SNR_TYPICAL[band]) ** 2
    return 0.5 * variance, 0.5 * variance / typical


def oli_noise_std(reflectance: np.ndarray, band: int) -> np.ndarray:
    """OLI's noise σ (reflectance) at ``reflectance`` for band index ``band`` (0-5 the six
    bands, 6 the pan): the square root of :func:`oli_noise_model` at ρ, ρ taken as 0 below 0
    (never below σ_typ · sqrt(0.5))."""
    offset, slope = oli_noise_model(band)
    return np.sqrt(offset + slope * np.maximum(reflectance, 0))


def _box_sum(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sums of ``values`` (h, w) over every ``height`` x ``width`` window, indexed by the
    window's top-left pixel: (h - height + 1, w - width + 1)."""
    total = np.zeros((values.shape[0] + 1, values.shape[1] + 1))
    total[1:, 1:] = values.cumsum(axis=0).cumsum(axis=1)
    return (total[height:, width:] - total[:-height, width:] - total[height:, :-width]
            + total[:-height, :-width])


def weak_texture_noise(image: np.ndarray, valid: np.ndarray, patch: int = NOISE_PATCH,
                       share: float = WEAK_TEXTURE_SHARE, levels: int = NOISE_LEVELS
                       ) -> tuple[float, float]:
    """The noise variance model (a, b), σ² = a + b · level (reflectance), of one band (h, w)
    from its weak-texture patches, after Liu, Tanaka and Okutomi (2013, "Single-image noise
    level estimation for blind denoising", IEEE TIP 22(12)): the smallest eigenvalue of the
    covariance of ``patch`` x ``patch`` patches (all of them ``valid``) whose gradient energy
    is among the lowest ``share`` is the noise variance, which texture, with fewer dimensions
    than a patch, leaves alone. It is taken within ``levels`` brightness quantiles of the
    patches (fewer where a level would have under :data:`MIN_CALM_PATCHES` x patch² calm
    patches), corrected for the number of patches n (the smallest eigenvalue of a sample
    covariance of pure noise is about σ² (1 - √(patch² / n))², Marchenko-Pastur), and (a, b)
    fitted to the levels by least squares with a, b ≥ 0. The calmest patches are also those
    whose noise happened to be small: on pure noise the figure is about 0.7 of the noise; on
    real texture, which still adds to the calmest patches, it is close to it (white noise of
    0.002 on Virginia farmland at 30 m: 0.0020-0.0026 in the six bands). The wavelet estimate
    (:func:`s2l8h.inference.checks.estimate_noise`) counts texture as noise; this one counts
    much less of it. (0, 0) with too few patches."""
    from numpy.lib.stride_tricks import sliding_window_view

    values = np.asarray(image, dtype=np.float64)
    size = patch * patch
    if min(values.shape) < patch:
        return 0.0, 0.0
    valid = np.asarray(valid, dtype=bool)
    values = np.where(valid, values, 0.0)  # what lies outside ``valid`` counts for nothing
    # Per patch (indexed by its top-left pixel): all valid, its gradient energy, its mean.
    usable = _box_sum(valid.astype(np.float64), patch, patch) == size
    energy = _box_sum(np.diff(values, axis=1) ** 2, patch, patch - 1) \
        + _box_sum(np.diff(values, axis=0) ** 2, patch - 1, patch)
    level = _box_sum(values, patch, patch) / size
    rows, cols = np.nonzero(usable)
    energy, level = energy[rows, cols], level[rows, cols]
    levels = min(levels, int(len(rows) * share) // (MIN_CALM_PATCHES * size))
    if levels < 1:
        return 0.0, 0.0
    windows = sliding_window_view(values, (patch, patch))
    order = np.argsort(level, kind="stable")
    means, variances = [], []
    for members in np.array_split(order, levels):
        calm_members = members[energy[members] <= np.quantile(energy[members], share)]
        calm = windows[rows[calm_members], cols[calm_members]].reshape(-1, size)
        smallest = max(float(np.linalg.eigvalsh(np.cov(calm.T))[0]), 0.0)
        means.append(float(calm.mean()))
        variances.append(smallest / (1 - math.sqrt(size / len(calm))) ** 2)
    if levels == 1 or np.ptp(means) == 0:
        return float(np.mean(variances)), 0.0
    design = np.stack([np.ones(levels), np.asarray(means)], axis=1)
    offset, slope = np.linalg.lstsq(design, np.asarray(variances), rcond=None)[0]
    if slope < 0:  # no growth with the level: a constant
        return float(np.mean(variances)), 0.0
    if offset < 0:  # through the origin
        return 0.0, float(np.dot(means, variances) / np.dot(means, means))
    return float(offset), float(slope)


__all__ = ["MIN_CALM_PATCHES", "MIN_NOISE_MODEL_SIDE", "NOISE_LEVELS", "NOISE_PATCH", "OLI_PAN",
           "OLI_REFLECTANCE_TYPICAL", "OLI_SNR_TYPICAL", "WEAK_TEXTURE_SHARE",
           "oli_noise_model", "oli_noise_std", "weak_texture_noise"]
