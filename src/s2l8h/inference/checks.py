"""Checks of a scene's inputs before harmonizing, and of the output against its input.

**Pan registration.** The pan is brought to 30 m (2 x 2 mean) and compared with an intensity
made from the six bands (their least-squares fit to that pan, with an intercept) by phase
correlation (scikit-image, cross-correlation normalization, 1/100 pixel, Hann window). The
shift is the (dx east, dy north) motion in metres of the pan's content against the bands'.
Pre-collection
products (pixel-centre references read as corners) and some Level-1 products show such
shifts; left alone they put the pan's detail in the wrong place. ``harmonize`` passes only
the pixels its quality band does not flag: clouds, seen by the pan and the bands from
slightly different angles along the track, are displaced between them (on the Florida scene
they made the shift (-2.4, -6.6) m instead of (-0.3, -1.2) m), and it corrects the shift
block by block (:mod:`s2l8h.inference.panreg`).

**Noise.** Per band, scikit-image's wavelet estimate of the noise σ (Donoho's MAD of the
finest diagonal coefficients, db2) on the 30 m bands; natural texture adds to it, so a noisy
input is flagged from the least-textured band: σ above :data:`NOISE_WARNING` (reflectance).
Where part of the window has no data, only the coefficients whose support is all data count
(the same estimate, masked: filled pixels would drag the median towards 0).

**Consistency** (reference-free, in the spirit of opensr-test's consistency metrics): the
output brought back to what Landsat would have measured — HLS bandpass MSI -> OLI, the
Landsat PSF (Gaussian, MTF 0.3 at the 30 m Nyquist frequency) and the 3 x 3 area average —
against the 30 m input on the same grid: per-band bias (output - input) and RMSE, the mean
spectral angle, and the residual shift (phase correlation on a central window). A faithful
output has bias near 0, RMSE near the input's noise, angle near 0 and no shift; an output
with a radiometric bias, misplaced detail or artefacts shows it here.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from skimage.filters import window
from skimage.registration import phase_cross_correlation

from s2l8h.bandpass import msi_to_oli
from s2l8h.bands import SENTINEL2_BANDS
from s2l8h.errors import S2L8HWarning
from s2l8h.io.mtl import PRE_COLLECTION, Geolocation
from s2l8h.resolution import fill_invalid, reduce_resolution

#: Pan shifts at or below this (metres) are left alone.
SHIFT_TOLERANCE_M = 2.0
#: A pan shift above this (metres) is warned about.
SHIFT_WARNING_M = 5.0
#: Noise σ (reflectance) of the least-textured band above which the input is called noisy.
NOISE_WARNING = 0.0015
#: Consistency warnings: |bias| of any band (reflectance), residual shift (metres).
BIAS_WARNING = 0.01
#: How far the networks would move a band's level (median over a scene's tiles, MSI
#: reflectance, :class:`~s2l8h.inference.consistency.LevelShifts`) above which the band is
#: warned about. On the validation rows of the Virginia and Zurich scenes it is at most 0.0020
#: in size under the 12 benchmark conditions that leave the levels alone and 0.0003 on real
#: Florida (Wald); under the ``atmosphere`` condition 0.0027-0.0086 in five bands of six (the
#: smallest of them only 0.0002 above this level), and under ``realistic`` 0.0036-0.0051 in one
#: or two.
LEVEL_SHIFT_WARNING = 0.0025
#: The tag ``harmonize`` writes a scene's :class:`~s2l8h.inference.consistency.LevelShifts`
#: summary to.
LEVEL_SHIFT_TAG = "S2L8H_LEVEL_SHIFT"
RESIDUAL_SHIFT_WARNING_M = 6.0
#: Side (30 m pixels) of the central window the checks look at.
CHECK_WINDOW = 768
#: Fewer valid pixels than this in the window: nothing is measured.
MIN_CHECK_PIXELS = 64
#: ... spread over at least this many rows and columns for a shift (:func:`spans_both_ways`).
MIN_CHECK_SPAN = 8


def central_window(rows: int, cols: int, size: int = CHECK_WINDOW) -> tuple[int, int, int, int]:
    """``(row0, rows, col0, cols)`` of the central ``size`` x ``size`` window (or less)."""
    height, width = min(rows, size), min(cols, size)
    return (rows - height) // 2, height, (cols - width) // 2, width


def measure_shift(reference: np.ndarray, moving: np.ndarray, pixel: float) -> tuple[float,
                                                                                      float]:
    """(dx east, dy north) metres by which ``moving``'s content sits away from
    ``reference``'s (2-D images on the same grid of ``pixel`` metres). Both are centred and
    tapered by a Hann window first: without it the image borders bias sub-pixel shifts
    towards zero (by a quarter of the shift on Sentinel-2 crops)."""
    taper = window("hann", reference.shape)
    with warnings.catch_warnings():  # a flat image: no shift to find, told by the caller
        warnings.filterwarnings("ignore", message="Could not determine RMS error")
        shift, _, _ = phase_cross_correlation((reference - reference.mean()) * taper,
                                              (moving - moving.mean()) * taper,
                                              upsample_factor=100, normalization=None)
    return float(-shift[1] * pixel), float(shift[0] * pixel)


def spans_both_ways(valid: np.ndarray, pixels: int = MIN_CHECK_SPAN) -> bool:
    """Whether ``valid`` (h, w) reaches across at least ``pixels`` rows and ``pixels``
    columns: a shift is measured in two directions, and a strip a few pixels wide (a grid
    that meets the scene along its edge) holds only one."""
    return int(valid.any(axis=1).sum()) >= pixels and int(valid.any(axis=0).sum()) >= pixels


def pan_intensity(multispectral: np.ndarray, pan: np.ndarray, valid: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The bands' (6, h, w) least-squares combination plus a constant fitted over ``valid``
    (h, w) to the pan (2h, 2w) brought to 30 m (2 x 2 mean), evaluated everywhere (the bands
    filled where they have no data), and that 30 m pan."""
    rows, cols = valid.shape
    pan30 = pan.reshape(rows, 2, cols, 2).mean(axis=(1, 3))
    design = np.concatenate([multispectral[:, valid].T, np.ones((int(valid.sum()), 1))], 1)
    weights, *_ = np.linalg.lstsq(design, pan30[valid], rcond=None)
    filled = fill_invalid(multispectral, valid)
    return np.tensordot(weights[:-1], filled, axes=1) + weights[-1], pan30


def measure_pan_shift(multispectral: np.ndarray, pan: np.ndarray, valid: np.ndarray,
                      pixel: float = 30.0) -> tuple[float, float]:
    """Shift (dx, dy metres) of the pan (2h, 2w) against the bands (6, h, w) on grids with
    the same edges (module docstring); ``valid`` (h, w) where both have data."""
    if valid.sum() < MIN_CHECK_PIXELS:
        return 0.0, 0.0
    intensity, pan30 = pan_intensity(multispectral, pan, valid)
    pan30 = np.where(valid, pan30, intensity)
    return measure_shift(intensity, pan30, pixel)


def estimate_noise(multispectral: np.ndarray, valid: np.ndarray | None = None) -> list[float]:
    """Per band wavelet noise σ estimate (reflectance) of (B, h, w); with ``valid`` (h, w),
    from the coefficients whose support lies in valid pixels only (module docstring)."""
    image = multispectral.astype(np.float64)
    if valid is None or valid.all():
        from skimage.restoration import estimate_sigma

        return [float(value) for value in
                estimate_sigma(image, channel_axis=0, average_sigmas=False)]
    return _masked_noise(image, valid)


def _masked_noise(image: np.ndarray, valid: np.ndarray) -> list[float]:
    """scikit-image's estimate (median |finest diagonal db2 coefficient| / 0.6745, zero
    coefficients left out) over the coefficients all of whose pixels are valid: coefficient
    k of the transform (mode "symmetric") depends on pixels 2k-2 ... 2k+1 in each axis."""
    import pywt
    from scipy import ndimage, stats

    padded = np.pad(valid, ((0, 3), (0, 3)), mode="edge").astype(np.uint8)
    covered = ndimage.minimum_filter(padded, size=4, mode="nearest")[::2, ::2].astype(bool)
    sigmas = []
    for band in image:
        diagonal = pywt.dwt2(band, "db2", mode="symmetric")[1][2]
        use = covered[:diagonal.shape[0], :diagonal.shape[1]] & (diagonal != 0)
        sigmas.append(float(np.median(np.abs(diagonal[use])) / stats.norm.ppf(0.75))
                      if use.any() else 0.0)
    return sigmas


def window_noise(multispectral: np.ndarray, valid: np.ndarray) -> list[float]:
    """The noise per band of a check window (6, h, w): holes filled, their coefficients left
    out; ``[]`` with fewer than :data:`MIN_CHECK_PIXELS` valid pixels."""
    if valid.sum() < MIN_CHECK_PIXELS:
        return []
    return estimate_noise(fill_invalid(multispectral, valid), valid)


def scene_noise(multispectral: np.ndarray, valid: np.ndarray) -> list[float]:
    """The input noise per band of a whole (6, h, w) scene held in memory, as
    :func:`check_inputs` measures it: :func:`window_noise` on the central window."""
    row0, rows, col0, cols = central_window(*valid.shape)
    window = (slice(row0, row0 + rows), slice(col0, col0 + cols))
    return window_noise(multispectral[:, window[0], window[1]], valid[window])


def to_landsat(output: np.ndarray, valid: np.ndarray, scale: int = 3,
               platform: str = "S2A") -> tuple[np.ndarray, np.ndarray]:
    """A Sentinel-2-like (6, H, W) 10 m output as Landsat would measure it on the 30 m grid
    with the same corner: MSI -> OLI, Landsat PSF, ``scale`` x ``scale`` area average.
    Returns (6, H // scale, W // scale) and where all its 10 m pixels were valid."""
    oli = msi_to_oli(output.astype(np.float64), platform)  # type: ignore[arg-type]
    return reduce_resolution(oli, valid, 30.0 / scale, scale)


@dataclass
class Consistency:
    """Sums over the blocks of an output, turned into the consistency report by
    :meth:`report`. Feed blocks with :meth:`add`; a central window (30 m pixels
    ``window = (row0, rows, col0, cols)``) is kept for the residual shift."""

    window: tuple[int, int, int, int] | None = None
    count: int = 0
    sum_difference: np.ndarray = field(default_factory=lambda: np.zeros(6))
    sum_square: np.ndarray = field(default_factory=lambda: np.zeros(6))
    sum_angle: float = 0.0
    _degraded: np.ndarray | None = None
    _input: np.ndarray | None = None
    _window_valid: np.ndarray | None = None
    _rows: set[int] = field(default_factory=set)  # 30 m rows and columns with a valid pixel
    _cols: set[int] = field(default_factory=set)

    def add(self, row0: int, col0: int, degraded: np.ndarray, landsat: np.ndarray,
            valid: np.ndarray) -> None:
        """A block at 30 m pixel ``(row0, col0)``: the output brought to 30 m
        (:func:`to_landsat`), the 30 m input, and where both are valid."""
        if not valid.any():
            return
        difference = (degraded - landsat)[:, valid]
        self.count += int(valid.sum())
        self._rows.update((row0 + np.flatnonzero(valid.any(axis=1))).tolist())
        self._cols.update((col0 + np.flatnonzero(valid.any(axis=0))).tolist())
        self.sum_difference += difference.sum(axis=1)
        self.sum_square += (difference**2).sum(axis=1)
        a, b = degraded[:, valid], landsat[:, valid]
        cosine = (a * b).sum(0) / np.maximum(np.linalg.norm(a, axis=0) *
                                             np.linalg.norm(b, axis=0), 1e-12)
        self.sum_angle += float(np.degrees(np.arccos(np.clip(cosine, -1, 1))).sum())
        if self.window is not None:
            self._keep_window(row0, col0, degraded, landsat, valid)

    def _keep_window(self, row0: int, col0: int, degraded: np.ndarray, landsat: np.ndarray,
                     valid: np.ndarray) -> None:
        w_row0, w_rows, w_col0, w_cols = self.window  # type: ignore[misc]
        if self._degraded is None:
            self._degraded = np.zeros((6, w_rows, w_cols))
            self._input = np.zeros((6, w_rows, w_cols))
            self._window_valid = np.zeros((w_rows, w_cols), dtype=bool)
        top, bottom = max(row0, w_row0), min(row0 + valid.shape[0], w_row0 + w_rows)
        left, right = max(col0, w_col0), min(col0 + valid.shape[1], w_col0 + w_cols)
        if top >= bottom or left >= right:
            return
        source = (slice(top - row0, bottom - row0), slice(left - col0, right - col0))
        target = (slice(top - w_row0, bottom - w_row0), slice(left - w_col0, right - w_col0))
        self._degraded[(slice(None), *target)] = degraded[(slice(None), *source)]
        self._input[(slice(None), *target)] = landsat[(slice(None), *source)]
        self._window_valid[target] = valid[source]  # type: ignore[index]

    def report(self) -> dict[str, object]:
        """Per-band bias and RMSE (reflectance, OLI), mean spectral angle (degrees), residual
        shift (dx, dy metres), pixels compared and the rows and columns they span (30 m)."""
        if self.count == 0:
            return {"pixels": 0}
        bias = self.sum_difference / self.count
        rmse = np.sqrt(self.sum_square / self.count)
        report: dict[str, object] = {
            "pixels": self.count, "span_px": [len(self._rows), len(self._cols)],
            "bias": [round(float(v), 5) for v in bias],
            "rmse": [round(float(v), 5) for v in rmse],
            "sam_degrees": round(self.sum_angle / self.count, 3)}
        valid = self._window_valid
        if valid is not None and valid.sum() >= MIN_CHECK_PIXELS and spans_both_ways(valid):
            degraded = fill_invalid(self._degraded, valid).mean(axis=0)  # type: ignore[arg-type]
            landsat = fill_invalid(self._input, valid).mean(axis=0)  # type: ignore[arg-type]
            shift = measure_shift(landsat, degraded, 30.0)
            if all(math.isfinite(value) for value in shift):
                report["shift_m"] = [round(shift[0], 2), round(shift[1], 2)]
        return report


def shift_magnitude(shift: tuple[float, float]) -> float:
    return math.hypot(*shift)


#: ``GEOMETRIC_RMSE_MODEL`` (m) above which ``harmonize`` without a reference warns. On the
#: validation rows of Virginia and Zurich, with the bands misregistered against the
#: Sentinel-2 truth by 9 m, σ's 68 % interval still covers 0.68 and 0.60 of the errors, by
#: 12 m 0.64 and 0.54; the margin over MTF-GLP falls from +2.45 / +2.01 dB (0 m) to
#: +1.01 / +0.54 dB (9 m) (``python benchmarks/misregistration.py``).
GEOLOCATION_WARNING_M = 9.0


def geolocation_reasons(geolocation: Geolocation | None) -> list[tuple[str, str]]:
    """Why the MTL says the scene may sit further from Sentinel-2's geolocation than σ allows
    for (:data:`GEOLOCATION_WARNING_M`), each as (a short flag, the reason in words): placed
    without ground control, a ground-control fit worse than that, ground control older than
    Collection 2 (tied to Sentinel-2's global reference image only since), Tier 2; none
    without an MTL or where it says none of these (a real-time ``RT`` scene is judged by its
    level and fit alone)."""
    if geolocation is None:
        return []
    reasons = []
    if geolocation.ground_control is False:
        reasons.append((str(geolocation.level1),
                        f"{geolocation.level1}, placed without ground control points"))
    rmse = geolocation.rmse_model_m
    if rmse is not None and rmse > GEOLOCATION_WARNING_M:
        reasons.append((f"RMSE {rmse:g} m", f"GEOMETRIC_RMSE_MODEL {rmse:g} m"))
    if geolocation.collection in ("01", PRE_COLLECTION):
        flag, which = ("C1", "Collection 1") if geolocation.collection == "01" else \
            ("pre-C", "a pre-collection scene")
        reasons.append((flag, f"{which}, whose ground control predates Collection 2's tie to "
                        "Sentinel-2's global reference image (the two then disagreed by about "
                        "5-12 m, more in places)"))
    if geolocation.tier == "T2":
        reasons.append(("T2", "Tier 2 (it missed Tier 1's geometric or radiometric criteria)"))
    return reasons


def geolocation_messages(geolocation: Geolocation | None) -> list[str]:
    """The warning of :func:`geolocation_reasons`, all reasons in one; none without any."""
    reasons = [words for _, words in geolocation_reasons(geolocation)]
    if not reasons:
        return []
    return [f"geolocation: {'; '.join(reasons)}: the bands may sit more than "
            f"{GEOLOCATION_WARNING_M:g} m from where Sentinel-2 sees the ground, beyond which "
            "σ under-covers the errors and the detail is misplaced; register to a Sentinel-2 "
            "image (--reference; s2l8h reference makes one from a STAC search)"]


class InputCheckWarning(S2L8HWarning):
    """An input check found something the user should know (pan shift, noisy input,
    registration, consistency, level shift)."""


@dataclass
class InputChecks:
    """What :func:`check_inputs` found: the pan's shift against the bands as measured
    (dx, dy metres; ``None`` without a pan), the shift the reader corrects, and the noise
    estimate per band (reflectance)."""

    pan_shift_m: tuple[float, float] | None
    corrected_m: tuple[float, float]
    noise: list[float]

    @property
    def noisy(self) -> bool:
        return bool(self.noise) and min(self.noise) > NOISE_WARNING

    def tags(self) -> dict[str, str]:
        return {
            "S2L8H_PAN_SHIFT_M": json.dumps(None if self.pan_shift_m is None else
                                            [round(v, 2) for v in self.pan_shift_m]),
            "S2L8H_PAN_SHIFT_CORRECTED_M": json.dumps([round(v, 2) for v in self.corrected_m]),
            "S2L8H_INPUT_NOISE": json.dumps([round(v, 5) for v in self.noise]),
        }

    def messages(self) -> list[str]:
        """Warnings worth showing the user."""
        found = []
        if self.pan_shift_m is not None and shift_magnitude(self.pan_shift_m) > SHIFT_WARNING_M:
            dx, dy = self.pan_shift_m
            action = "corrected" if self.corrected_m != (0.0, 0.0) else \
                "NOT corrected (registration disabled)"
            found.append(f"the pan is shifted by {dx:+.1f} m east, {dy:+.1f} m north against "
                         f"the bands; {action}")
        if self.noisy:
            found.append(f"noisy input: estimated noise σ {min(self.noise):.5f} (reflectance) "
                         f"in the least-textured band, above {NOISE_WARNING}; expect noisier "
                         "output and wider uncertainty")
        return found


def check_inputs(read_window, register_pan: bool = True) -> InputChecks:
    """Measure the pan shift and the noise on a window of the inputs.

    ``read_window()`` returns ``(multispectral (6, h, w), pan (1, 2h, 2w) or None, valid (h,
    w))``. With ``register_pan``, a shift above :data:`SHIFT_TOLERANCE_M` is corrected. (A
    second measurement on the corrected read does not refine it: it converges on the ~1 m
    bias the cubic resampling of the two grids leaves.)"""
    multispectral, pan, valid = read_window()
    noise = window_noise(multispectral, valid)
    if not noise:
        return InputChecks(None, (0.0, 0.0), [])
    if pan is None:
        return InputChecks(None, (0.0, 0.0), noise)
    pan_valid = (pan[0] != 0).reshape(valid.shape[0], 2, valid.shape[1], 2).all(axis=(1, 3))
    valid = valid & pan_valid
    shift = measure_pan_shift(multispectral, pan[0], valid)
    corrected = shift if register_pan and shift_magnitude(shift) > SHIFT_TOLERANCE_M else \
        (0.0, 0.0)
    return InputChecks(shift, corrected, noise)


def level_shift_messages(summary: dict | None) -> list[str]:
    """Warnings from how far the networks would move a scene's band levels
    (:meth:`~s2l8h.inference.consistency.LevelShifts.summary`; ``None``: nothing measured)."""
    summary = summary or {}
    medians = summary.get("median") or []
    shifted = [f"{band} {value:+.4f}" for band, value in zip(SENTINEL2_BANDS, medians,
                                                              strict=False)
               if value is not None and abs(value) > LEVEL_SHIFT_WARNING]
    if not shifted:
        return []
    tiles = summary.get("tiles", 0)
    kept = ("the output keeps the input's level" if summary.get("restored", True) else
            "the output carries the networks' level")
    return [f"the networks would move the level of {', '.join(shifted)} (reflectance, median "
            f"over {tiles} tile{'s' * (tiles != 1)}; above {LEVEL_SHIFT_WARNING}): the input's "
            "level is off (atmospheric correction, a Level-1 scene read as surface reflectance "
            f"or the reverse) or the scene is unlike the training scenes; {kept}. σ's "
            "calibration and the margin over pansharpening measured on the benchmark may not "
            "hold here (held out, σ was too wide over ocean and desert and too narrow on a real "
            "scene unlike the training scenes)"]


def consistency_judged(report: dict) -> bool:
    """Whether a consistency report's pixels span enough rows and columns
    (:data:`MIN_CHECK_SPAN`, 30 m) to judge the output by (a report without ``span_px``,
    written before it was recorded, is judged)."""
    span = report.get("span_px")
    return not span or min(span) >= MIN_CHECK_SPAN


def consistency_messages(report: dict) -> list[str]:
    """Warnings from a consistency report (:meth:`Consistency.report`); none where the
    pixels compared span fewer than :data:`MIN_CHECK_SPAN` rows or columns (a strip along
    the scene's edge, where the output brought back to 30 m lacks the neighbours its PSF
    reaches)."""
    found: list[str] = []
    if not consistency_judged(report):
        return found
    bias = report.get("bias")
    if bias and max(abs(v) for v in bias) > BIAS_WARNING:
        found.append(f"the output departs from its input by a bias of up to "
                     f"{max(bias, key=abs):+.4f} reflectance (per band {bias})")
    shift = report.get("shift_m")
    if shift and shift_magnitude(tuple(shift)) > RESIDUAL_SHIFT_WARNING_M:
        found.append(f"the output is shifted by {shift} m against its input")
    return found
