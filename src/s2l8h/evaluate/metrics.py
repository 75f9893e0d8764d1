"""Image-quality and uncertainty metrics, one definition each, all masked.

MSE, PSNR and SSIM are defined in :mod:`s2l8h.similarity` (the patch filter of
:mod:`s2l8h.data` uses them too) and re-exported here.

Conventions: images are reflectance arrays (bands, H, W) or (H, W); ``valid`` (H, W) selects
the pixels that count (default: all finite pixels of both images). ``data_range`` is 1 for
reflectance (the paper's protocol) and 2 for normalized indices in [-1, 1].

- PSNR = 10·log10(data_range² / MSE) dB (scikit-image's definition).
- SSIM: scikit-image's ``structural_similarity`` map (7 x 7 uniform window, K1 0.01, K2 0.03),
  averaged over valid pixels whose whole window is valid and at least 3 pixels from the image
  border (scikit-image crops the same border); invalid pixels are filled before filtering.
- NRMSE = ||pred - ref||₂ / ||ref||₂ (scikit-image's default 'euclidean' normalization).
- RMSE, MAE in reflectance.
- SAM: mean spectral angle between predicted and reference pixel vectors, degrees.
- ERGAS = 100 · (h / l) · sqrt(mean_k (RMSE_k / mean(ref_k))²), h / l = 10 m / 30 m.
- Uncertainty (σ = predicted standard deviation, e = pred - ref): Pearson and Spearman
  correlation of σ with |e|; Gaussian NLL = mean(0.5·log(2πσ²) + e²/(2σ²)); coverage of the
  central 68 % / 95 % Gaussian intervals (|e| ≤ 0.994·σ / 1.960·σ), the 68 % one also per
  band (``coverage_68_<band>``); the calibration curve
  (expected vs observed coverage of central intervals at levels 0.05 … 0.95) and its expected
  calibration error (mean absolute gap).
- Detail (over- and under-sharpening): the high-frequency energy ratio, per band, is the
  energy of the prediction's high-pass (the image minus its Gaussian low-pass, σ = 1.5 px, on
  valid pixels) over that of the reference: 1 for the true detail, above for over-sharpening
  (halos, amplified noise), below for blur. The high-frequency skill, per band, is how much of
  that detail is right: 1 - energy of the high-pass of the error / energy of the reference's
  high-pass (1 = the true detail, 0 = no detail or as much wrong detail as right, negative =
  more wrong than right). For an estimator that is the conditional mean of the truth (what a
  network trained on squared error approximates) the two agree, ratio = skill, so a ratio
  below 1 is not a fault to sharpen away: more detail than the skill is invented detail.
  Flat-area noise: the standard deviation of the
  error's high-pass (mean over bands) on the flattest 10 % of valid pixels (lowest local
  standard deviation of the reference over 5 x 5 pixels), where there is no detail to get.
  These measures need :data:`MIN_MEASURED_PIXELS` pixels 4 px inside the valid area (and as
  many flat ones): on a smaller or scattered mask they are NaN, not a figure from a few pixels.
  Noise gain (:func:`noise_gain`): the standard deviation, on those flat pixels, of what the
  input's noise changes in the output (output on noisy input minus output on the same input
  without it) over the standard deviation of that input noise: above 1, noise is amplified.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, stats
from scipy.ndimage import binary_erosion

from s2l8h.bands import SENTINEL2_BANDS
from s2l8h.similarity import SSIM_WINDOW, mse, psnr, ssim
from s2l8h.similarity import pixels as _pixels
from s2l8h.similarity import valid_mask as _valid

RESOLUTION_RATIO = 10.0 / 30.0
CALIBRATION_LEVELS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))


def rmse(prediction: np.ndarray, reference: np.ndarray,
         valid: np.ndarray | None = None) -> float:
    """Root-mean-square error over valid pixels (and bands), reflectance."""
    return float(np.sqrt(mse(prediction, reference, valid)))


def mae(prediction: np.ndarray, reference: np.ndarray,
        valid: np.ndarray | None = None) -> float:
    """Mean absolute error over valid pixels (and bands), reflectance."""
    mask = _valid(prediction, reference, valid)
    return float(np.mean(np.abs(_pixels(prediction, mask).astype(np.float64)
                                - _pixels(reference, mask))))


def nrmse(prediction: np.ndarray, reference: np.ndarray,
          valid: np.ndarray | None = None) -> float:
    """||prediction - reference||₂ / ||reference||₂ over valid pixels (unitless)."""
    mask = _valid(prediction, reference, valid)
    reference_pixels = _pixels(reference, mask).astype(np.float64)
    difference = _pixels(prediction, mask) - reference_pixels
    return float(np.sqrt(np.sum(difference**2)) / np.sqrt(np.sum(reference_pixels**2)))


def sam(prediction: np.ndarray, reference: np.ndarray,
        valid: np.ndarray | None = None) -> float:
    """Mean spectral angle in degrees over valid pixels of (bands, H, W) images."""
    mask = _valid(prediction, reference, valid)
    p = _pixels(prediction, mask).astype(np.float64)
    r = _pixels(reference, mask).astype(np.float64)
    cosine = np.sum(p * r, axis=0) / (np.linalg.norm(p, axis=0) * np.linalg.norm(r, axis=0))
    return float(np.degrees(np.mean(np.arccos(np.clip(cosine, -1.0, 1.0)))))


def ergas(prediction: np.ndarray, reference: np.ndarray, valid: np.ndarray | None = None,
          ratio: float = RESOLUTION_RATIO) -> float:
    """ERGAS (unitless, lower is better) of (bands, H, W) images; ``ratio``: output / input
    pixel size (10 m / 30 m)."""
    mask = _valid(prediction, reference, valid)
    p = _pixels(prediction, mask).astype(np.float64)
    r = _pixels(reference, mask).astype(np.float64)
    band_rmse = np.sqrt(np.mean((p - r) ** 2, axis=1))
    return float(100 * ratio * np.sqrt(np.mean((band_rmse / r.mean(axis=1)) ** 2)))


def normalized_difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(first - second) / (first + second), NaN where undefined (e.g. NDVI of B8A, B04)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        index = (first - second) / (first + second)
    return np.where(np.isfinite(index), index, np.nan)


def pearson(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson correlation of the flattened arrays."""
    return float(stats.pearsonr(first.ravel(), second.ravel()).statistic)


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of the flattened arrays."""
    return float(stats.spearmanr(first.ravel(), second.ravel()).statistic)


BANDS = SENTINEL2_BANDS
INDICES = {"NDVI": ("B8A", "B04"), "NDWI_B11": ("B8A", "B11"), "NDWI_B12": ("B8A", "B12")}


def image_metrics(prediction: np.ndarray, reference: np.ndarray,
                  valid: np.ndarray | None = None,
                  bands: tuple[str, ...] = BANDS) -> dict[str, dict[str, float]]:
    """Per band and overall PSNR, SSIM, NRMSE, RMSE, MAE (data range 1); overall SAM, ERGAS;
    NDVI and NDWI (B8A/B11, B8A/B12) agreement (PSNR and SSIM with data range 2, MAE,
    Pearson r)."""
    mask = _valid(prediction, reference, valid)
    results: dict[str, dict[str, float]] = {}
    for index, band in enumerate(bands):
        p, r = prediction[index], reference[index]
        results[band] = {"psnr": psnr(p, r, mask), "ssim": ssim(p, r, mask),
                         "nrmse": nrmse(p, r, mask), "rmse": rmse(p, r, mask),
                         "mae": mae(p, r, mask)}
    results["overall"] = {
        "psnr": psnr(prediction, reference, mask), "ssim": ssim(prediction, reference, mask),
        "nrmse": nrmse(prediction, reference, mask), "rmse": rmse(prediction, reference, mask),
        "mae": mae(prediction, reference, mask), "sam": sam(prediction, reference, mask),
        "ergas": ergas(prediction, reference, mask),
    }
    if all(band in bands for pair in INDICES.values() for band in pair):
        for name, (first, second) in INDICES.items():
            i, j = bands.index(first), bands.index(second)
            p = normalized_difference(prediction[i], prediction[j])
            r = normalized_difference(reference[i], reference[j])
            index_mask = _valid(p, r, mask)
            results[name] = {"psnr": psnr(p, r, index_mask, 2.0),
                             "ssim": ssim(p, r, index_mask, 2.0), "mae": mae(p, r, index_mask),
                             "pearson": pearson(p[index_mask], r[index_mask])}
    return results


@dataclass(frozen=True)
class Calibration:
    """Expected (``levels``) and observed coverage of central Gaussian intervals."""

    levels: tuple[float, ...]
    observed: tuple[float, ...]

    @property
    def expected_calibration_error(self) -> float:
        """Mean absolute gap between observed and expected coverage."""
        return float(np.mean(np.abs(np.asarray(self.observed) - np.asarray(self.levels))))


def calibration_curve(error: np.ndarray, std: np.ndarray,
                      levels: tuple[float, ...] = CALIBRATION_LEVELS) -> Calibration:
    """Observed fraction of |error| inside the central Gaussian interval of each level."""
    z = np.abs(error) / np.maximum(std, 1e-12)
    observed = tuple(float(np.mean(z <= stats.norm.ppf(0.5 + level / 2))) for level in levels)
    return Calibration(tuple(float(level) for level in levels), observed)


def uncertainty_metrics(prediction: np.ndarray, std: np.ndarray, reference: np.ndarray,
                        valid: np.ndarray | None = None,
                        bands: tuple[str, ...] = BANDS) -> dict[str, float]:
    """Agreement of predicted σ with the actual error over valid pixels of all bands, and
    each band's 68 % coverage (``coverage_68_<band>``, for (bands, H, W) input)."""
    mask = _valid(prediction, reference, valid) & np.isfinite(std).all(axis=0) \
        if std.ndim == 3 else _valid(prediction, reference, valid) & np.isfinite(std)
    by_band = (_pixels(prediction, mask) - _pixels(reference, mask)).astype(np.float64)
    sigma_by_band = np.maximum(_pixels(std, mask).astype(np.float64), 1e-6)
    error, sigma = by_band.ravel(), sigma_by_band.ravel()
    calibration = calibration_curve(error, sigma)
    one_sigma = stats.norm.ppf(0.84)
    per_band = {} if by_band.ndim != 2 or len(by_band) != len(bands) else {
        f"coverage_68_{band}": float(np.mean(np.abs(band_error) <= one_sigma * band_sigma))
        for band, band_error, band_sigma in zip(bands, by_band, sigma_by_band, strict=True)}
    return {
        "pearson_std_abs_error": pearson(sigma, np.abs(error)),
        "spearman_std_abs_error": spearman(sigma, np.abs(error)),
        "gaussian_nll": float(np.mean(0.5 * np.log(2 * np.pi * sigma**2)
                                      + error**2 / (2 * sigma**2))),
        "coverage_68": float(np.mean(np.abs(error) <= one_sigma * sigma)),
        "coverage_95": float(np.mean(np.abs(error) <= stats.norm.ppf(0.975) * sigma)),
        "ece": calibration.expected_calibration_error,
        **per_band,
    }


HIGH_PASS_SIGMA = 1.5
#: The detail and flat-area measures need at least this many pixels 4 px inside the valid
#: area (and as many flat ones); a smaller or scattered mask gives NaN (not measured).
MIN_MEASURED_PIXELS = 32


def _high_pass(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` (H, W) minus its Gaussian low-pass (σ 1.5 px), invalid pixels filled."""
    filled = np.where(mask, image, np.mean(image[mask])).astype(np.float64)
    return filled - ndimage.gaussian_filter(filled, HIGH_PASS_SIGMA, mode="nearest")


def high_frequency_detail(prediction: np.ndarray, reference: np.ndarray,
                          valid: np.ndarray | None = None) -> tuple[list[float], list[float]]:
    """Per band: the HF ratio (high-pass energy of the prediction / of the reference) and the
    HF skill (1 - high-pass energy of the error / of the reference); module docstring."""
    mask = _valid(prediction, reference, valid)
    inner = binary_erosion(mask, iterations=4)
    if inner.sum() < MIN_MEASURED_PIXELS:
        return [math.nan] * len(prediction), [math.nan] * len(prediction)
    ratios, skills = [], []
    for p, r in zip(prediction, reference, strict=True):
        high_p, high_r = _high_pass(p, mask)[inner], _high_pass(r, mask)[inner]
        energy_r = max(float(np.mean(high_r**2)), 1e-20)
        # The high-pass is linear: the error's high-pass is the difference of the two.
        ratios.append(float(np.mean(high_p**2) / energy_r))
        skills.append(float(1 - np.mean((high_p - high_r) ** 2) / energy_r))
    return ratios, skills


def high_frequency_ratio(prediction: np.ndarray, reference: np.ndarray,
                         valid: np.ndarray | None = None) -> list[float]:
    """Per band: high-pass energy of the prediction / of the reference (module docstring)."""
    return high_frequency_detail(prediction, reference, valid)[0]


def high_frequency_skill(prediction: np.ndarray, reference: np.ndarray,
                         valid: np.ndarray | None = None) -> list[float]:
    """Per band: 1 - high-pass energy of the error / of the reference (module docstring)."""
    return high_frequency_detail(prediction, reference, valid)[1]


def flat_pixels(reference: np.ndarray, valid: np.ndarray | None = None,
                fraction: float = 0.1) -> np.ndarray:
    """(H, W) the flattest ``fraction`` of the valid pixels of ``reference`` (bands, H, W):
    lowest local standard deviation over 5 x 5 pixels (mean over bands), at least 4 px inside
    the valid area; none when fewer than :data:`MIN_MEASURED_PIXELS` lie that far inside."""
    mask = _valid(reference, reference, valid)
    inner = binary_erosion(mask, iterations=4)
    if inner.sum() < MIN_MEASURED_PIXELS:
        return np.zeros_like(inner)
    local = [np.sqrt(np.maximum(ndimage.uniform_filter(np.where(mask, r, 0.0) ** 2, 5)
                                - ndimage.uniform_filter(np.where(mask, r, 0.0), 5) ** 2, 0))
             for r in reference.astype(np.float64)]
    activity = np.mean(local, axis=0)
    return inner & (activity <= np.quantile(activity[inner], fraction))


def flat_area_noise(prediction: np.ndarray, reference: np.ndarray,
                    valid: np.ndarray | None = None, fraction: float = 0.1) -> float:
    """Standard deviation of the error's high-pass on the flattest ``fraction`` of the valid
    pixels (module docstring), mean over bands; reflectance. NaN (not measured) when fewer
    than :data:`MIN_MEASURED_PIXELS` pixels are flat."""
    mask = _valid(prediction, reference, valid)
    flat = flat_pixels(reference, mask, fraction)
    if flat.sum() < MIN_MEASURED_PIXELS:
        return math.nan
    return float(np.mean([np.std(_high_pass(p - r, mask)[flat])
                          for p, r in zip(prediction, reference, strict=True)]))


def noise_gain(response: np.ndarray, input_noise: np.ndarray,
               flat: np.ndarray) -> list[float]:
    """Per band: how much of the input's noise reaches the output, per pixel.

    ``response`` (bands, H, W) is a method's output on noisy input minus its output on the
    same input without the noise (in the benchmark the pan is noisy too, so a pan-sharpening
    method's response carries the pan's noise); ``input_noise`` (bands, H, W) is the bands'
    noise itself on the output's grid (nearest neighbour: each output pixel holding the noise
    of an input pixel it lies in); ``flat`` (H, W) the pixels to measure (:func:`flat_pixels`).
    The gain is the standard deviation of the response over that of the input noise, both on
    the ``flat`` pixels where both are finite: 1 = output noise as large as the input's,
    above = amplified, below = smoothed out; NaN (not measured) on fewer than
    :data:`MIN_MEASURED_PIXELS` such pixels."""
    gains = []
    for out, noise in zip(response, input_noise, strict=True):
        where = flat & np.isfinite(out) & np.isfinite(noise)
        if where.sum() < MIN_MEASURED_PIXELS:
            gains.append(math.nan)
            continue
        gains.append(float(np.std(out[where])) / max(float(np.std(noise[where])), 1e-20))
    return gains


__all__ = ["BANDS", "CALIBRATION_LEVELS", "HIGH_PASS_SIGMA", "INDICES", "MIN_MEASURED_PIXELS",
           "RESOLUTION_RATIO", "SSIM_WINDOW", "Calibration", "calibration_curve", "ergas",
           "flat_area_noise", "flat_pixels", "high_frequency_detail", "high_frequency_ratio",
           "high_frequency_skill", "image_metrics", "mae", "mse", "noise_gain",
           "normalized_difference", "nrmse", "pearson", "psnr", "rmse", "sam", "spearman",
           "ssim", "uncertainty_metrics"]
