"""Radiometric consistency with the input: the output, seen as Landsat would see it, should
be the input.

:class:`ConsistentPredictor` wraps any predictor. For each tile it brings the predicted
10 m mean back to the 30 m grid as OLI measures it (:func:`landsat_view`: HLS bandpass
MSI -> OLI, the Landsat Gaussian PSF with modulation 0.3 at the 30 m Nyquist frequency, the
3 x 3 area average), takes the residual against the 30 m input bands, turns it into MSI
units (divided by the HLS slopes) and adds it back upsampled bicubically to 10 m: one
back-projection step, as SEN2SR constrains its output to the low-resolution input; ``harmonize``
runs two (:class:`ConsistentPredictor`).

The residual's per-band level (its median over the tile, :func:`level_departure`) is added
back too (``restore_level``, the default): the output keeps each band's level as the input
and the HLS bandpass adjustment give it. The networks were trained to undo random per-band
offsets between their input and the truth (``s2l8h.data.simulate.TRAINING_RANGES``), which
no single scene shows; they can only have done it by pulling each band towards the spectra
of their training scenes. That wins on the held-out rows of a training scene (the
``atmosphere`` condition) and puts a bias of up to ±0.01 into scenes unlike them: open ocean,
desert. Measured with ``lite2.real-wald5`` on the validation rows of the training scene,
restoring the level adds +0.09 to +0.13 dB clean, under noise and with a sharper PSF, is
equal on real Florida (Wald), and costs -2.2 dB under the ``atmosphere`` condition and
-0.33 dB under ``realistic``, which both shift the input's levels on purpose. Where the
networks wanted to change a band's level, that level is uncertain (the input is offset, or
the scene is unlike the training scenes): the square of :func:`level_departure` enters a
calibrated ensemble's σ² (``level_variance_scale``). ``restore_level=False`` keeps the
networks' level (the behaviour of s2l8h before 2026-12).

The residual carries the input's noise, which a plain back-projection would add to the output.
So before it is added back it goes through a local adaptive Wiener filter
(:func:`wiener_shrink`, 3 x 3 pixels at 30 m): where the residual varies locally no more
than its own noise, it is replaced by its local mean. The noise is that of the residual itself:
the wavelet estimate of :func:`s2l8h.inference.checks.estimate_noise`, per tile and band.
The input's own estimate would not do: on clean input it measures texture too, and the
filter then removed real corrections (-0.13 dB clean). Measured with ``lite2.real-wald5`` on
the validation rows, the filter cuts the noise gain in flat areas from 1.57 to 1.22-1.30 and
adds +0.10 dB at input noise 0.002, where the spectral angle improves from 2.64 to 2.50°. It
costs -0.03 dB clean and -0.04 dB on real Florida (Wald).

With ``filter_input`` (``harmonize``'s default) the networks see the bands and the pan after
the input noise filter (:mod:`s2l8h.inference.denoise`) and the residual is taken against the
filtered bands: taken against the bands as they are, it put back the noise the filter had
taken out (validation rows, ``lite2.real-wald7``: noise gain under OLI's noise 0.92 -> 0.74,
at input noise 0.002 0.64 -> 0.42; PSNR within ±0.01 dB but −0.04 dB at 0.002). The Wiener
filter on the residual stays: without it, against the filtered bands, +0.04 dB clean and
+0.05 dB on Florida but −0.10 dB at input noise 0.002 and a noise gain of 0.82 instead of
0.74 under OLI's noise.

With ``filter_input`` the output's detail is last shrunk against the input's noise
(:func:`shrink_detail`): the networks amplify what the filter leaves of the noise (near shores
and in texture, where non-local means finds few alike patches) 1.4-2 x, and the detail finer
than the 30 m grid is where it goes. Each pixel keeps its detail by the share of the detail's
local energy that stands above the input's noise (the filter's per-tile model). Measured on
the validation rows (``python benchmarks/detail_shrink.py --rows validation``, without → with):
the noise gain under OLI's noise 0.74 → 0.55 pooled and 0.92 → 0.74 in B8A on Virginia,
1.63 → 1.45 on Zurich, for −0.01 to −0.02 dB in the Virginia conditions (+0.02 with a 30 %
sharper PSF), −0.01 to −0.04 dB on Zurich (+0.04 with the sharper PSF) and −0.01 dB on real
Florida (Wald). Over water within 150 m of land the gain stays 1.1-1.7: the networks' detail
there, the shore's and what they put beside it, stands above the noise.

Shapes: multispectral (N, 6, h, w) reflectance on the 30 m grid, mean (N, 6, 3h, 3w) on the
nested 10 m grid (the model grid of :mod:`s2l8h.inference.tiling`). The variance is passed
through, plus a calibrated ensemble's level term and its term for the pan's disagreement with
the bands (:func:`pan_disagreement`), the sum times its factor per band
(:class:`ConsistentPredictor`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from s2l8h.bandpass import HLS_BANDPASS, Platform
from s2l8h.inference.checks import MIN_CHECK_PIXELS, estimate_noise
from s2l8h.inference.denoise import band_noise_models, filter_bands, filter_pan
from s2l8h.inference.uncertainty import Prediction, Predictor, WrappedPredictor
from s2l8h.resolution import psf_sigma

#: The window (30 m pixels) of :func:`pan_disagreement`'s local RMS.
PAN_DISAGREEMENT_WINDOW = 3
#: The least slope (of the pan on the visible bands' mean) :func:`pan_disagreement` divides
#: by (a pan the visible bands hardly explain: its residual is not made larger than 4 x
#: itself).
MIN_PAN_GAIN = 0.25
#: The window (30 m pixels) over which :func:`pan_disagreement` regresses the pan on the
#: visible bands around each pixel, so that the fit does not depend on the tile's size (the
#: slope it is divided by still does);
#: the ridge on the bands' coefficients (a share of their mean local variance) and the
#: fewest pixels with data a window needs (else the tile's own fit).
PAN_REGRESSION_WINDOW = 9
PAN_REGRESSION_RIDGE = 1e-7
PAN_REGRESSION_MIN_PIXELS = 12
#: The window (10 m pixels) over which :func:`shrink_detail` measures the detail's energy,
#: and the multiple of the input's noise variance it shrinks against in
#: :class:`ConsistentPredictor` (0: the step is left out; ``benchmarks/detail_shrink.py``).
DETAIL_WINDOW = 5
DETAIL_NOISE_FACTOR = 1.0
#: The fewest usable 30 m pixels a band of a tile needs for its level shift to count in
#: :class:`LevelShifts`.
MIN_LEVEL_PIXELS = MIN_CHECK_PIXELS


def _gaussian_kernel(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    radius = math.ceil(4 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), ``sigma`` in pixels, edges replicated."""
    kernel = _gaussian_kernel(sigma, image.dtype, image.device)
    radius = kernel.numel() // 2
    channels = image.shape[1]
    result = F.pad(image, (radius, radius, 0, 0), mode="replicate")
    result = F.conv2d(result, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1),
                      groups=channels)
    result = F.pad(result, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(result, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1),
                    groups=channels)


def _slopes(platform: Platform, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    table = torch.tensor(HLS_BANDPASS[platform], dtype=like.dtype, device=like.device)
    return table[:, 0].view(1, 6, 1, 1), table[:, 1].view(1, 6, 1, 1)


def _landsat_pixels(image: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, C, scale h, scale w) seen through the Landsat Gaussian PSF and the ``scale`` x
    ``scale`` area average: (N, C, h, w)."""
    return F.avg_pool2d(gaussian_blur(image, psf_sigma(float(scale))), scale)


def landsat_view(mean: torch.Tensor, scale: int = 3, platform: Platform = "S2A"
                 ) -> torch.Tensor:
    """(N, 6, scale h, scale w) Sentinel-2-like reflectance as OLI would measure it on the
    nested grid ``scale`` times coarser: (N, 6, h, w) OLI reflectance."""
    slope, offset = _slopes(platform, mean)
    return _landsat_pixels(mean * slope + offset, scale)


def _residual_and_level(mean: torch.Tensor, multispectral: torch.Tensor, scale: int,
                        platform: Platform
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(:func:`consistency_residual`, :func:`level_departure`, the unusable pixels (N, 6, h, w)
    the residual is zero over, the filled input pixels (N, 1, h, w)) from one degradation."""
    slope, _ = _slopes(platform, mean)
    bands = multispectral[:, :6]
    residual = (bands - landsat_view(mean, scale, platform)) / slope
    filled = (bands == 0).all(dim=1, keepdim=True)
    unusable = F.max_pool2d(filled.to(residual.dtype), 5, stride=1, padding=2) > 0
    unusable = unusable.expand_as(residual) | ~torch.isfinite(residual)
    level = torch.nan_to_num(torch.where(unusable, torch.nan, residual).flatten(-2)
                             .nanmedian(dim=-1).values)[..., None, None]
    residual = torch.where(unusable, torch.zeros_like(residual), residual - level)
    return residual, level, unusable, filled


def consistency_residual(mean: torch.Tensor, multispectral: torch.Tensor, scale: int = 3,
                         platform: Platform = "S2A") -> torch.Tensor:
    """The 30 m input minus :func:`landsat_view` of ``mean``, in MSI units, with its
    per-band level over each tile (the median: robust to clouds; :func:`level_departure`)
    removed: (N, 6, h, w).

    Input pixels the readers filled (all six bands exactly 0: outside the scene, nodata) and
    the two pixels around them, which the PSF mixes with them, get no residual; nor do pixels
    whose residual is not finite (a NaN in ``mean``)."""
    return _residual_and_level(mean, multispectral, scale, platform)[0]


def level_departure(mean: torch.Tensor, multispectral: torch.Tensor, scale: int = 3,
                    platform: Platform = "S2A") -> torch.Tensor:
    """(N, 6, 1, 1) the level that :func:`consistency_residual` removes: per tile and band the
    median of the 30 m input minus :func:`landsat_view` of ``mean`` (MSI reflectance;
    negative where the output is brighter than its input says): how far the networks moved
    the band's level from the input's. Where they did, over an atmospheric offset or over
    targets unlike their training scenes (open water, desert), the level is uncertain, and its
    square enters σ². It is measured
    over what the predictor is given at once: one tile of ``harmonize``'s plan (512 output
    pixels by default), the whole scene in the Wald benchmark. The consistency step adds it
    back unless asked not to (module docstring)."""
    return _residual_and_level(mean, multispectral, scale, platform)[1]


@dataclass(eq=False)
class LevelShifts:
    """How far the networks would move each band's level, per tile a
    :class:`ConsistentPredictor` ran, summarised for the scene by :meth:`summary`.

    Each shift is the networks' level minus the input's (MSI reflectance; minus
    :func:`level_departure`, measured on the networks' output before the consistency step puts
    the input's level back). It stays near 0 where the input's level is what the networks
    expect; a shift says that the input's level is off (an atmospheric correction, a Level-1
    scene read as surface reflectance or the reverse) or that the scene is unlike their
    training scenes. A band of a tile with fewer than :data:`MIN_LEVEL_PIXELS` usable 30 m
    pixels (not filled with 0) is not counted; pixels the quality band flags (clouds) are
    counted: a tile's median over its pixels absorbs clouds on under half of the tile, and the
    median over tiles cloudy tiles while they are under half of the scene's. Tiles
    run twice (the edge tiles of the column blocks of a scene wider than ``run_tiled``'s block)
    count twice. ``restored``: whether the output keeps the input's level (the consistency step
    ran and restores it); ``in_sigma``: whether the shift enters σ (a calibrated level term)."""

    restored: bool = True
    in_sigma: bool = False
    shifts: list[np.ndarray] = field(default_factory=list)  # (6,) per tile, NaN: not counted

    def add(self, level: torch.Tensor, unusable: torch.Tensor) -> None:
        """A batch's :func:`level_departure` (N, 6, 1, 1) and its unusable pixels
        (N, 6, h, w), as the consistency step computes them."""
        counted = (~unusable).flatten(-2).sum(dim=-1) >= MIN_LEVEL_PIXELS
        shift = torch.where(counted, -level[..., 0, 0].float(), torch.nan)
        self.shifts.extend(shift.detach().cpu().numpy().astype(np.float64))

    def summary(self) -> dict[str, object] | None:
        """``tiles`` (the most counted in any band), per band the ``median`` shift over tiles
        and ``p90_abs``, the 90th percentile of its size over tiles (where part of a scene is
        unlike the rest, e.g. open water beside land), ``None`` for a band without a counted
        tile; and ``restored`` and ``in_sigma``. ``None`` when no tile was counted."""
        if not self.shifts:
            return None
        values = np.stack(self.shifts)
        counted = np.isfinite(values).sum(axis=0)
        if not counted.any():
            return None

        def per_band(statistic) -> list[float | None]:
            return [round(float(statistic(values[np.isfinite(values[:, band]), band])), 5)
                    + 0.0 if counted[band] else None for band in range(values.shape[1])]

        return {"tiles": int(counted.max()), "median": per_band(np.median),
                "p90_abs": per_band(lambda found: np.percentile(np.abs(found), 90)),
                "restored": self.restored, "in_sigma": self.in_sigma}


def _window_mean(values: torch.Tensor, size: int) -> torch.Tensor:
    """Mean of (N, C, H, W) over ``size`` x ``size`` windows (odd size), edges replicated."""
    pad = size // 2
    return F.avg_pool2d(F.pad(values, (pad, pad, pad, pad), mode="replicate"), size, stride=1)


def _local_fit(design: torch.Tensor, target: torch.Tensor, keep: torch.Tensor,
               fallback: torch.Tensor, window: int = PAN_REGRESSION_WINDOW) -> torch.Tensor:
    """(1, h, w) ``target`` (1, h, w) fitted at each pixel by least squares on ``design``
    (4, h, w: blue, green, red, 1) over the ``keep`` (1, h, w) pixels of the ``window`` x
    ``window`` window around it (cut at the tile's edges), with a ridge of
    :data:`PAN_REGRESSION_RIDGE` on the bands' part; the tile's own fit ``fallback`` (4,)
    where the window holds fewer than :data:`PAN_REGRESSION_MIN_PIXELS` such pixels. NaN where
    ``design`` is (off ``keep``)."""
    weights = keep.double()
    clean = torch.where(keep, design, torch.zeros_like(design))
    values = torch.where(keep, target, torch.zeros_like(target))
    pad = window // 2

    def local_sum(image: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(image[None], (pad, pad, pad, pad)), window, stride=1,
                            divisor_override=1)[0]

    count = local_sum(weights)[0]  # (h, w)
    size = design.shape[0]
    gram = torch.stack([torch.stack([local_sum(clean[i:i + 1] * clean[j:j + 1])[0]
                                     for j in range(size)], dim=-1)
                        for i in range(size)], dim=-2)  # (h, w, 4, 4)
    moment = torch.stack([local_sum(clean[i:i + 1] * values)[0] for i in range(size)],
                         dim=-1)  # (h, w, 4)
    enough = count >= PAN_REGRESSION_MIN_PIXELS
    pixels = count.clamp_min(1)[..., None, None]
    mean = gram[..., :3, 3] / pixels[..., 0]  # (h, w, 3): the bands' local means
    covariance = gram[..., :3, :3] / pixels - mean[..., :, None] * mean[..., None, :]
    spread = torch.diagonal(covariance, dim1=-2, dim2=-1).sum(-1).clamp_min(0) / 3
    bands_diagonal = torch.zeros(size, dtype=gram.dtype, device=gram.device)
    bands_diagonal[:3] = 1.0
    ridge = (PAN_REGRESSION_RIDGE * spread + 1e-12) * count  # (h, w)
    gram = gram + torch.diag_embed(ridge[..., None] * bands_diagonal)
    gram = torch.where(enough[..., None, None], gram,
                       torch.eye(size, dtype=gram.dtype, device=gram.device))
    local = torch.linalg.solve(gram, moment[..., None])[..., 0]  # (h, w, 4)
    coefficients = torch.where(enough[..., None], local, fallback.to(local))
    return torch.einsum("chw,hwc->hw", design, coefficients)[None]


def pan_disagreement(multispectral: torch.Tensor, pan: torch.Tensor, scale: int = 3,
                     window: int = PAN_DISAGREEMENT_WINDOW) -> torch.Tensor:
    """(N, 1, scale h, scale w) how far the pan (N, 1, 2h, 2w) departs from what the visible
    bands (N, 6, h, w) say it is, in band reflectance: the pan averaged to the 30 m grid
    (2 x 2 pixels), regressed on blue, green, red and a constant by least squares over the
    pixels with data in all six bands and all four pan pixels of the
    :data:`PAN_REGRESSION_WINDOW` x :data:`PAN_REGRESSION_WINDOW` window around each pixel
    (:func:`_local_fit`), the residual divided by the tile's slope of the pan on the mean of
    blue, green and red (a Level-1 pan, TOA reflectance x sin(sun elevation), and a
    surface-reflectance pan give the same figure), its RMS over the pixels with data in each
    ``window`` x ``window`` window at 30 m, upsampled bilinearly to the 10 m grid. Where it is
    large, the pan's detail does not belong to the bands (the pan shifted against them, a PSF
    or an acquisition unlike the training pairs, a cloud edge moved): the networks, which
    inject that detail, err more there than their variance says. Its square enters a
    calibrated ensemble's σ² (``pan_variance_scale``). Until 2026-12-07 the regression was
    fitted over the whole tile (one tile of ``harmonize``'s plan, the whole scene in the Wald
    benchmark), and a small tile was fitted better: on the real Florida validation rows
    (Wald) cut into 14 x 14 pixel crops at 90 m the figure was 0.66-0.94 x the whole rows' on
    the same pixels, and σ on crops of the size of the Marburg scene 0.72-1.00 x; over a
    fixed window it is 0.89-0.98 x. What is left: windows cut by the crop's edge, and the
    slope, still the tile's (on generated scenes a crop's slope is 0.87-1.21 x the whole
    scene's; a slope over the window would be unsteady where the bands are flat). Measured
    with ``lite2.real-wald6`` and the regression per tile, on the Virginia validation rows 1σ
    covered 81 % of errors where the unnormalised residual RMS is below 0.0012 and 57-68 %
    above (clean), 69 % and 34-40 % under a 15 m misregistration. Zero for a tile with fewer
    than :data:`~s2l8h.inference.checks.MIN_CHECK_PIXELS` pixels with data, and where no pixel
    of the window has data. Computed in float64 on the CPU (as :func:`residual_noise`),
    returned on ``multispectral``'s device and dtype."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be odd and >= 1, got {window}")
    height, width = multispectral.shape[-2:]
    if pan.shape[-2] < 2 * height or pan.shape[-1] < 2 * width:
        raise ValueError(f"the pan ({tuple(pan.shape[-2:])}) must cover twice the bands' "
                         f"rows and columns ({2 * height}, {2 * width})")
    inputs = multispectral[:, :6].detach().cpu().double()
    pan15 = pan[:, :1, :2 * height, :2 * width].detach().cpu().double()
    pan_low = F.avg_pool2d(pan15, 2)
    usable = (inputs != 0).all(dim=1, keepdim=True) & torch.isfinite(inputs).all(
        dim=1, keepdim=True) & (F.avg_pool2d(((pan15 != 0) & torch.isfinite(pan15)).double(),
                                             2) == 1)
    design = torch.cat([inputs[:, :3], torch.ones_like(pan_low)], dim=1)  # (N, 4, h, w)
    residuals = []
    for tile_design, tile_pan, keep in zip(design, pan_low, usable, strict=True):
        if int(keep.sum()) < MIN_CHECK_PIXELS:
            residuals.append(torch.zeros_like(tile_pan))
            continue
        rows = tile_design[:, keep[0]].T  # (P, 4)
        coefficients = torch.linalg.lstsq(rows, tile_pan[keep][:, None]).solution[:, 0]
        brightness = rows[:, :3].mean(dim=1, keepdim=True)
        slope = torch.linalg.lstsq(torch.cat([brightness, rows[:, 3:]], dim=1),
                                   tile_pan[keep][:, None]).solution[0, 0]
        gain = slope.clamp_min(MIN_PAN_GAIN)
        fitted = _local_fit(tile_design, tile_pan, keep, coefficients)
        residuals.append(torch.where(keep, (tile_pan - fitted) / gain,
                                     torch.zeros_like(tile_pan)))
    square = _window_mean(torch.stack(residuals) ** 2, window)
    share = _window_mean(usable.double(), window)  # the usable share of each window
    local = torch.where(share > 0, square / share.clamp_min(1e-12), torch.zeros_like(square))
    spread = F.interpolate(local.sqrt(), size=(scale * height, scale * width),
                           mode="bilinear", align_corners=False)
    return spread.to(multispectral.dtype).to(multispectral.device)


def residual_noise(residual: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
    """(N, C, 1, 1) the wavelet noise σ estimate of each tile and band of ``residual``
    (N, C, h, w) over the pixels ``usable`` (N, C, h, w) in every band; 0 for a tile with
    fewer than :data:`~s2l8h.inference.checks.MIN_CHECK_PIXELS` of them."""
    estimates = []
    for tile, keep in zip(residual.detach().double().cpu().numpy(),
                          usable.all(dim=1).detach().cpu().numpy(), strict=True):
        estimates.append(estimate_noise(tile, keep) if keep.sum() >= MIN_CHECK_PIXELS
                         else [0.0] * tile.shape[0])
    return torch.tensor(estimates, dtype=residual.dtype, device=residual.device)[..., None, None]


def wiener_shrink(image: torch.Tensor, noise_variance: torch.Tensor, size: int = 3,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """Local adaptive Wiener filter of (N, C, H, W) for white noise of ``noise_variance``
    (broadcast to (N, C, 1, 1)): local mean m and variance v over ``size`` x ``size`` pixels,
    m + max(0, v - noise) / v · (x - m). The formula of :func:`scipy.signal.wiener`, on the
    tensors' device, in float32 at least, with edges replicated (SciPy pads with zeros, which
    biases m at the tile edges). ``weights`` (broadcast to the image; 1 usable, 0 not): m and v
    over the usable pixels of each window only."""
    dtype = torch.promote_types(image.dtype, torch.float32)
    image = image.to(dtype)
    if weights is None:
        local_mean = _window_mean(image, size)
        local_square = _window_mean(image * image, size)
    else:
        weights = weights.to(dtype).expand_as(image)
        share = _window_mean(weights, size)  # the usable share of each window
        inverse = torch.where(share > 0, 1 / share.clamp_min(1e-6), torch.zeros_like(share))
        local_mean = _window_mean(image * weights, size) * inverse
        local_square = _window_mean(image * image * weights, size) * inverse
    local_variance = (local_square - local_mean ** 2).clamp_min(0)
    excess = (local_variance - noise_variance.to(dtype)).clamp_min(0)
    gain = torch.where(local_variance > 0, excess / local_variance.clamp_min(1e-30),
                       torch.zeros_like(local_variance))
    return local_mean + gain * (image - local_mean)


def add_back(mean: torch.Tensor, residual: torch.Tensor, unusable: torch.Tensor,
             denoise: bool = True) -> torch.Tensor:
    """``mean`` (N, 6, H, W) plus a :func:`consistency_residual` (N, 6, h, w) upsampled
    bicubically to its grid; with ``denoise``, the residual first goes through
    :func:`wiener_shrink` over its usable pixels with their own noise
    (:func:`residual_noise`); ``unusable`` pixels stay at zero."""
    if denoise:
        usable = ~unusable
        noise = residual_noise(residual, usable)
        residual = torch.where(unusable, torch.zeros_like(residual),
                               wiener_shrink(residual, noise ** 2, weights=usable))
    return mean + F.interpolate(residual, size=mean.shape[-2:], mode="bicubic",
                                align_corners=False)


def shrink_detail(mean: torch.Tensor, noise_models: torch.Tensor, filled: torch.Tensor,
                  scale: int = 3, window: int | None = None, factor: float = 1.0
                  ) -> torch.Tensor:
    """``mean`` (N, 6, H, W) with its detail finer than the 30 m grid shrunk where it is no
    larger than the input's noise (:class:`ConsistentPredictor`'s last step with
    ``filter_input``).

    The detail is ``mean`` minus its view at 30 m brought back to 10 m (the Landsat PSF, the
    ``scale`` x ``scale`` area average, bicubic upsampling): what the networks added beyond
    what the 30 m grid carries, and where they amplify what is left of the input's noise.
    Each pixel's detail is multiplied by max(0, E - v) / E, E its local energy (mean square
    over ``window`` x ``window`` pixels, :data:`DETAIL_WINDOW` unless given) and v ``factor`` x
    the input's noise variance there, a + b ρ from the tile's ``noise_models`` (N, 6, 2;
    :func:`~s2l8h.inference.denoise.band_noise_models`) at the view's reflectance ρ: kept
    where it stands well above the noise (texture, edges), taken out where it is no larger
    (flat ground). Pixels within two 30 m pixels of a ``filled`` input pixel (N, 1, h, w),
    tiles whose models are (0, 0) and pixels whose view or window a NaN of ``mean`` reaches
    stay as they are."""
    low = F.interpolate(_landsat_pixels(mean, scale), size=mean.shape[-2:], mode="bicubic",
                        align_corners=False)
    detail = mean - low
    models = noise_models.to(mean.dtype).to(mean.device)
    noise = factor * (models[..., 0, None, None] + models[..., 1, None, None] * low.clamp_min(0))
    energy = _window_mean(detail * detail, DETAIL_WINDOW if window is None else window)
    gain = torch.where(energy > 0, (energy - noise).clamp_min(0) / energy.clamp_min(1e-30),
                       torch.ones_like(energy))
    near_filled = F.max_pool2d(filled.to(mean.dtype), 5, stride=1, padding=2)
    near_filled = F.interpolate(near_filled, size=mean.shape[-2:], mode="nearest") > 0
    shrunk = mean - (1 - gain) * detail  # exactly ``mean`` where the gain is 1
    return torch.where(near_filled | ~torch.isfinite(shrunk), mean, shrunk)


def project(mean: torch.Tensor, multispectral: torch.Tensor, scale: int = 3,
            platform: Platform = "S2A", denoise: bool = True, restore_level: bool = True
            ) -> torch.Tensor:
    """One back-projection step: :func:`add_back` of ``mean``'s
    :func:`consistency_residual`, plus its :func:`level_departure` with ``restore_level``."""
    residual, level, unusable, filled = _residual_and_level(mean, multispectral, scale,
                                                            platform)
    corrected = add_back(mean, residual, unusable, denoise)
    return _restore_level(corrected, level, filled) if restore_level else corrected


def _restore_level(mean: torch.Tensor, level: torch.Tensor, filled: torch.Tensor
                   ) -> torch.Tensor:
    """``mean`` (N, 6, H, W) plus each tile's and band's ``level`` (N, 6, 1, 1), a constant,
    over every 10 m pixel but those of ``filled`` 30 m pixels (N, 1, h, w): all the way to
    the edge of the data, where the residual itself is not used."""
    outside = F.interpolate(filled.to(mean.dtype), size=mean.shape[-2:], mode="nearest") > 0
    return torch.where(outside, mean, mean + level.to(mean.dtype))


class ConsistentPredictor(WrappedPredictor):
    """``predictor`` with its mean made consistent with the input (module docstring), by
    ``steps`` back-projection steps, each band's level included unless ``restore_level`` is
    false. Two are the default of ``harmonize`` (since 2026-12): on the validation rows, with
    the level restored, the second adds +0.07 dB clean and under OLI's noise, +0.02 to +0.03 dB
    at input noise 0.002, with a 40 % blurrier PSF, under the ``atmosphere`` and ``realistic``
    conditions and on real Florida (Wald), and costs 0.07 dB with a 30 % sharper PSF (the
    projection assumes the nominal Landsat PSF). One step was the default while the sharper
    PSF was the condition with the smallest margin; with the level restored that is the
    ``atmosphere`` condition, which the second step helps. 0 (``--no-consistency``) projects
    nothing: it only adds the level and pan terms and applies the band factors, and with
    ``filter_input`` still shrinks the detail. ``denoise``: filter the
    residual's noise (module docstring; default on). ``level_variance_scale``: where the predictor
    gives a variance, that times the square of the networks' :func:`level_departure` is added
    to it (a registered ensemble's calibration; 0 adds nothing); ``pan_variance_scale``
    likewise times the square of the input's :func:`pan_disagreement` (nothing without a
    pan); ``band_variance_factors`` (one per band, () for none) then multiply the variance
    per band. ``filter_input``: the predictor is fed the 30 m bands and the pan after the
    input noise filter (:func:`~s2l8h.inference.denoise.filter_bands`,
    :func:`~s2l8h.inference.denoise.filter_pan`), and its output is made consistent with the
    filtered bands, so that the back-projection does not put the noise the filter took out
    back in, and its detail is then shrunk against the input's noise (:func:`shrink_detail`,
    ``DETAIL_NOISE_FACTOR`` x the filter's noise models; 0 leaves it out), which leaves the
    output consistent with the filtered bands only up to a fraction of their noise (what the
    detail it takes out had at 30 m); the pan term still compares the bands and the pan as
    they are. The step and the filter run in float32 whatever autocast the networks run
    under."""

    def __init__(self, predictor: Predictor, platform: Platform = "S2A", steps: int = 2,
                 denoise: bool = True, level_variance_scale: float = 0.0,
                 restore_level: bool = True, pan_variance_scale: float = 0.0,
                 band_variance_factors: Sequence[float] = (),
                 filter_input: bool = False) -> None:
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        for name, value in (("level_variance_scale", level_variance_scale),
                            ("pan_variance_scale", pan_variance_scale)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not all(value > 0 for value in band_variance_factors):
            raise ValueError(f"band_variance_factors must be > 0, got {band_variance_factors}")
        super().__init__(predictor)
        self.platform = platform
        self.steps = steps
        self.denoise = denoise
        self.level_variance_scale = float(level_variance_scale)
        self.pan_variance_scale = float(pan_variance_scale)
        self.band_variance_factors = tuple(float(value) for value in band_variance_factors)
        self.restore_level = restore_level
        self.filter_input = filter_input
        #: How far the networks would move each band's level, per tile run
        #: (:class:`LevelShifts`).
        self.level_shifts = LevelShifts(
            restored=steps > 0 and restore_level,
            in_sigma=self.level_variance_scale > 0 and predictor.gives_variance)

    def __call__(self, multispectral: torch.Tensor, pan: torch.Tensor | None) -> Prediction:
        reference, seen_pan, noise_models = multispectral, pan, None
        if self.filter_input:
            with torch.autocast(multispectral.device.type, enabled=False):
                noise_models = band_noise_models(multispectral)
                reference = filter_bands(multispectral, noise_models)
                seen_pan = None if pan is None else filter_pan(pan)
        mean, variance = self.predictor(reference, seen_pan)
        if variance is not None and self.band_variance_factors:
            if len(self.band_variance_factors) != variance.shape[1]:
                raise ValueError(f"{len(self.band_variance_factors)} band_variance_factors "
                                 f"for {variance.shape[1]} bands")
            factors = torch.tensor(self.band_variance_factors, dtype=variance.dtype,
                                   device=variance.device)[:, None, None]
        else:
            factors = None
        adds_variance = variance is not None and bool(
            self.level_variance_scale or (self.pan_variance_scale and pan is not None))
        if not self.steps and not adds_variance and noise_models is None:
            return mean, variance if factors is None else variance * factors
        scale = mean.shape[-1] // multispectral.shape[-1]
        with torch.autocast(mean.device.type, enabled=False):
            corrected, bands = mean.float(), reference.float()
            residual, level, unusable, filled = _residual_and_level(corrected, bands, scale,
                                                                    self.platform)
            self.level_shifts.add(level, unusable)
            if variance is not None and self.level_variance_scale:
                variance = variance + (self.level_variance_scale * level ** 2).to(variance.dtype)
            if variance is not None and self.pan_variance_scale and pan is not None:
                disagreement = pan_disagreement(multispectral.float(), pan.float(), scale)
                variance = variance + (self.pan_variance_scale
                                       * disagreement ** 2).to(variance.dtype)
            for step in range(self.steps):
                if step:
                    residual, level, unusable, filled = _residual_and_level(
                        corrected, bands, scale, self.platform)
                corrected = add_back(corrected, residual, unusable, self.denoise)
                if self.restore_level:
                    corrected = _restore_level(corrected, level, filled)
            if noise_models is not None and DETAIL_NOISE_FACTOR > 0:
                corrected = shrink_detail(corrected, noise_models, filled, scale,
                                          factor=DETAIL_NOISE_FACTOR)
        if factors is not None:
            variance = variance * factors
        changed = self.steps or noise_models is not None
        return (corrected.to(mean.dtype) if changed else mean), variance


__all__ = ["DETAIL_NOISE_FACTOR", "DETAIL_WINDOW", "MIN_LEVEL_PIXELS", "ConsistentPredictor",
           "LevelShifts", "add_back", "consistency_residual", "gaussian_blur", "landsat_view",
           "level_departure", "pan_disagreement", "project", "residual_noise", "shrink_detail",
           "wiener_shrink"]
