"""Classical baselines: upsampling and pansharpening of the Landsat bands onto the 10 m grid.

Every baseline works on georeferenced grids: the 30 m bands and the 15 m pan are warped onto
the output grid by GDAL (``rasterio.warp.reproject``), which also accounts for the 5 m offset
between Landsat and Sentinel-2 pixel edges. The HLS bandpass adjustment is then inverted
(OLI -> MSI) so that every method is compared on Sentinel-2 radiometry.

Pansharpening (formulas of Vivone et al., "A critical comparison among pansharpening
algorithms", IEEE TGRS 53(5), 2015), with ``MS`` the bicubic-upsampled bands and ``P`` the pan
on the output grid:

- Brovey: ``MS_k · P' / I``, ``I`` the mean of the blue, green and red bands (the pan's
  spectral range) and ``P'`` the pan matched to ``I`` in mean and standard deviation.
- GSA (Gram-Schmidt adaptive, Aiazzi et al. 2007): ``I = Σ w_k MS_k + b`` with weights from a
  least-squares fit of the low-pass pan on the bands; ``MS_k + g_k (P' - I)``,
  ``g_k = cov(MS_k, I) / var(I)``.
- HPF (high-pass filtering): ``MS_k + (σ_k / σ_P) (P - box(P))``, box of one 30 m pixel.
- MTF-GLP: ``MS_k + g_k (P - P_L)``, ``P_L`` the pan filtered by the Gaussian matched to the
  Landsat MTF (0.3 at Nyquist), reduced to 30 m and expanded back (bicubic),
  ``g_k = cov(MS_k, P_L) / var(P_L)`` (regression-based injection).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from scipy import ndimage

from s2l8h.bandpass import Platform, oli_to_msi
from s2l8h.io.grid import warp
from s2l8h.resolution import psf_sigma

UPSAMPLING = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear,
              "bicubic": Resampling.cubic, "lanczos": Resampling.lanczos}
PANSHARPENING = ("brovey", "gsa", "hpf", "mtf-glp")
BASELINES = (*UPSAMPLING, *PANSHARPENING)


def _match(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    scale = np.std(reference[mask]) / max(np.std(image[mask]), 1e-12)
    return (image - np.mean(image[mask])) * scale + np.mean(reference[mask])


def _gain(band: np.ndarray, detail_source: np.ndarray, mask: np.ndarray) -> float:
    a, b = band[mask], detail_source[mask]
    return float(np.cov(a, b)[0, 1] / max(np.var(b, ddof=1), 1e-12))


def _fill(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace NaN by the band mean (for filtering); return the image and the valid mask."""
    mask = np.isfinite(image).all(axis=0) if image.ndim == 3 else np.isfinite(image)
    if image.ndim == 3:
        means = np.array([np.nanmean(band) for band in image])[:, None, None]
        return np.where(mask, image, means), mask
    return np.where(mask, image, np.nanmean(image)), mask


def brovey(ms: np.ndarray, pan: np.ndarray, mask: np.ndarray, **_: object) -> np.ndarray:
    intensity = ms[:3].mean(axis=0)
    matched = _match(pan, intensity, mask)
    return ms * (matched / np.maximum(intensity, 1e-6))[None]


def gsa(ms: np.ndarray, pan: np.ndarray, mask: np.ndarray, pan_low: np.ndarray,
        **_: object) -> np.ndarray:
    design = np.concatenate([ms[:, mask].T, np.ones((int(mask.sum()), 1))], axis=1)
    weights, *_ = np.linalg.lstsq(design, pan_low[mask], rcond=None)
    intensity = np.tensordot(weights[:-1], ms, axes=1) + weights[-1]
    matched = _match(pan, intensity, mask)
    detail = matched - intensity
    return np.stack([band + _gain(band, intensity, mask) * detail for band in ms])


def hpf(ms: np.ndarray, pan: np.ndarray, mask: np.ndarray, scale: int, **_: object
        ) -> np.ndarray:
    detail = pan - ndimage.uniform_filter(pan, size=scale, mode="nearest")
    pan_std = max(np.std(pan[mask]), 1e-12)
    return np.stack([band + np.std(band[mask]) / pan_std * detail for band in ms])


def mtf_glp(ms: np.ndarray, pan: np.ndarray, mask: np.ndarray, pan_low: np.ndarray,
            **_: object) -> np.ndarray:
    detail = pan - pan_low
    return np.stack([band + _gain(band, pan_low, mask) * detail for band in ms])


PANSHARPENERS: dict[str, Callable[..., np.ndarray]] = {
    "brovey": brovey, "gsa": gsa, "hpf": hpf, "mtf-glp": mtf_glp}


def run_baseline(name: str, multispectral: np.ndarray, lowres: GeoBox, pan: np.ndarray,
                 pan_grid: GeoBox, target: GeoBox, *, platform: Platform = "S2A",
                 pan_sun_sine: float = 1.0) -> np.ndarray:
    """One baseline's (6, H, W) Sentinel-2-like reflectance on ``target`` (NaN nodata).

    ``multispectral`` is OLI reflectance on ``lowres`` (30 m), ``pan`` the pan ρ' on
    ``pan_grid`` (15 m); ``pan_sun_sine`` turns ρ' into ρ (sin of the sun elevation).
    """
    if name in UPSAMPLING:
        upsampled = warp(multispectral, lowres, target, UPSAMPLING[name])
        return oli_to_msi(upsampled, platform)
    if name not in PANSHARPENERS:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    upsampled, mask = _fill(warp(multispectral, lowres, target, Resampling.cubic))
    pan_fine, pan_mask = _fill(warp(pan / pan_sun_sine, pan_grid, target, Resampling.cubic))
    mask &= pan_mask
    scale = round(lowres.affine.a / target.affine.a)
    sigma = psf_sigma(lowres.affine.a) / target.affine.a
    reduced = warp(ndimage.gaussian_filter(pan_fine, sigma, mode="nearest"), target, lowres,
                   Resampling.average)
    pan_low, _ = _fill(warp(_fill(reduced)[0], lowres, target, Resampling.cubic))
    fused = PANSHARPENERS[name](upsampled, pan_fine, mask, pan_low=pan_low, scale=scale)
    fused[:, ~mask] = np.nan
    return oli_to_msi(fused.astype(np.float32), platform)
