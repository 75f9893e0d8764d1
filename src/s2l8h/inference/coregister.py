"""Co-registration of a Landsat scene to a Sentinel-2 reference image.

No network can see from its input alone that the whole Landsat scene sits some metres away
from where Sentinel-2 puts the same ground: Landsat Collection 2 and Sentinel-2 agree to
about 5-12 m, more in places (Storey et al. 2016; Skakun et al. 2017). A 10 m output whose
detail is right for its input is then wrong by that shift for anyone who compares it with
Sentinel-2, pixel by pixel. Harmonized Landsat Sentinel-2 (HLS) therefore registers Landsat
to the Sentinel-2 geometry before it harmonizes; ``harmonize --reference`` does the same.

**Measurement.** On the central window of the scene (30 m, :func:`s2l8h.inference.checks.
central_window`) the reference is area-averaged onto the bands' grid
(:func:`s2l8h.io.reference.read_reference`) and the six bands are fitted to it by least
squares (with an intercept, so any band, scale or radiometry of the reference works; refitted
without the pixels beyond :data:`OUTLIER_SCALES` robust standard deviations, which clouds on
either image would otherwise bend the fit towards). The fit is phase-correlated with the
reference (:func:`s2l8h.inference.checks.measure_shift`: 1/100 pixel, Hann window); then,
three times, the pixels where the reference disagrees with the fit moved back by that shift,
over 150 m patches or grossly pixel by pixel (clouds, their shadows, land changed between
the dates: :func:`agreeing_pixels`), are weighted out of the reference and the shift
measured again. The shift is the (dx east, dy north) motion in metres of the scene's content
against the reference's, in the scene's projected CRS.

**Acceptance.** The shift is corrected when it is above :data:`SHIFT_TOLERANCE_M`, at most
:data:`MAX_SCENE_SHIFT_M`, and when moving the fit by it raises its correlation with the
reference by a margin (:data:`MIN_DECORRELATION_DROP`; a shift that does not is a false
peak). A larger shift or a false peak is reported,
not applied, and the user is warned; a shift within the tolerance is only recorded. A
corrected scene is read with its georeference moved back by the shift onto working grids laid
on its own pixels where they belong (:func:`s2l8h.io.grid.registered_model_grid`): the
networks see its pixels unresampled, and their output is warped onto the output grid.
(Resampling the 30 m input by the shift instead cost the default 1.3 dB on the benchmark's
misregistration: the networks were trained on unresampled pixels.) How exact it is with
clouds, another season or a coarser reference: ``benchmarks/registration.py``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from odc.geo.geobox import GeoBox
from scipy import ndimage

from s2l8h.inference.checks import SHIFT_TOLERANCE_M, measure_shift
from s2l8h.io.landsat import describe_file
from s2l8h.io.reference import read_reference
from s2l8h.resolution import fill_invalid

#: Largest scene shift (metres) corrected: two Landsat pixels. Larger ones are a wrong
#: reference or a false correlation peak far more often than a real misregistration.
MAX_SCENE_SHIFT_M = 60.0
#: Fewest pixels (30 m) that both the scene and the reference cover for a measurement.
MIN_REGISTRATION_PIXELS = 1024
#: Robust standard deviations of the local residual beyond which the reference is taken to
#: disagree with the scene (clouds, shadows, change between the dates).
OUTLIER_SCALES = 4.0
#: The same, pixel by pixel, for gross departures (small bright clouds).
GROSS_OUTLIER_SCALES = 12.0
#: A shift is a false peak unless moving the fit by it takes at least 0.5 % off its
#: decorrelation with the reference (1 - correlation): a weakly related reference gave a
#: spurious 2.8 m shift a rise of 0.2728 -> 0.2732; real shifts on the registration
#: benchmark's perturbed references take off at least 0.99 %.
MIN_DECORRELATION_DROP = 0.995


@dataclass(frozen=True)
class SceneRegistration:
    """What :func:`register_scene` found: the reference, the measured shift (dx east, dy
    north metres of the scene's content against the reference's; ``None`` when not
    measurable), the shift the reader corrects, the correlation of the bands' fit with the
    reference before and after moving it, the pixels used, why a measured shift was not
    corrected (empty when it was, or when it was within the tolerance) and the reference as
    ``"<file name> sha256:<hex>"``."""

    reference: str
    shift_m: tuple[float, float] | None
    corrected_m: tuple[float, float]
    correlation_before: float | None = None
    correlation_after: float | None = None
    pixels: int = 0
    refused: str = ""
    described: str = ""

    def tags(self) -> dict[str, str]:
        """``S2L8H_SCENE_SHIFT``: the reference by file name and SHA-256 (no local folders),
        the shifts, the correlations before and after, the pixels and any refusal."""
        return {"S2L8H_SCENE_SHIFT": json.dumps({
            "reference": self.described or Path(self.reference).name,
            "shift_m": None if self.shift_m is None else [round(v, 2) for v in self.shift_m],
            "corrected_m": [round(v, 2) for v in self.corrected_m],
            "correlation": None if self.correlation_before is None else
            [round(self.correlation_before, 4), round(self.correlation_after or 0.0, 4)],
            "pixels": self.pixels, "refused": self.refused})}

    def messages(self) -> list[str]:
        """Warnings worth showing the user."""
        if self.refused:
            return [f"registration to the reference {self.reference}: {self.refused}; "
                    "the scene is used as georeferenced"]
        dx, dy = self.corrected_m
        if math.hypot(dx, dy) > 0:
            return [f"the scene is shifted by {dx:+.1f} m east, {dy:+.1f} m north against "
                    f"the reference {self.reference}; corrected"]
        return []


def fit_to_reference(multispectral: np.ndarray, valid: np.ndarray, reference: np.ndarray,
                     fit_on: np.ndarray | None = None) -> np.ndarray:
    """The least-squares combination of the bands (6, h, w) plus a constant that best matches
    ``reference`` (h, w) over ``fit_on`` (default ``valid``), evaluated everywhere: the bands
    as they are where they have data (``valid``), filled elsewhere."""
    fit_on = valid if fit_on is None else fit_on
    design = np.concatenate([multispectral[:, fit_on].T.astype(np.float64),
                             np.ones((int(fit_on.sum()), 1))], 1)
    weights, *_ = np.linalg.lstsq(design, reference[fit_on], rcond=None)
    filled = fill_invalid(multispectral.astype(np.float64), valid)
    return np.tensordot(weights[:-1], filled, axes=1) + weights[-1]


def _correlation(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> float:
    return float(np.corrcoef(a[valid], b[valid])[0, 1])


def _move_back(image: np.ndarray, shift: tuple[float, float], pixel: float) -> np.ndarray:
    """``image`` with its content moved back by ``shift`` (dx east, dy north metres; cubic
    spline): skimage's (row, column) registering shift, north being up the rows."""
    return ndimage.shift(image, (shift[1] / pixel, -shift[0] / pixel), order=3,
                         mode="nearest")


def robust_fit(multispectral: np.ndarray, valid: np.ndarray, reference: np.ndarray,
               fit_on: np.ndarray, iterations: int = 5) -> np.ndarray:
    """:func:`fit_to_reference` over ``fit_on`` (where both have data), refitted without the
    pixels whose residual lies beyond :data:`OUTLIER_SCALES` robust standard deviations of its
    median (clouds on either image would otherwise bend the fit towards themselves);
    evaluated everywhere, the bands as they are over ``valid``."""
    keep = fit_on
    for _ in range(iterations):
        fitted = fit_to_reference(multispectral, valid, reference, keep)
        residual = reference - fitted
        centre = np.median(residual[fit_on])
        spread = 1.4826 * np.median(np.abs(residual[fit_on] - centre))
        keep = fit_on & (np.abs(residual - centre) <= OUTLIER_SCALES * max(spread, 1e-12))
    return fit_to_reference(multispectral, valid, reference, keep)


def agreeing_pixels(fitted: np.ndarray, reference: np.ndarray, valid: np.ndarray
                    ) -> np.ndarray:
    """Where the reference agrees with the bands' fit: valid pixels whose residual, averaged
    over 5 x 5 pixels (150 m), lies within :data:`OUTLIER_SCALES` robust standard deviations
    (1.4826 x the median absolute deviation) of its median, and whose own residual within
    :data:`GROSS_OUTLIER_SCALES`; two pixels around any other are left out too. Clouds,
    their shadows and land changed between the dates leave patches of residual of one sign;
    a misregistration leaves thin bands of both signs along edges, which the average
    cancels."""
    residual = np.where(valid, reference - fitted, 0.0)
    local = ndimage.uniform_filter(residual, 5, mode="nearest") / np.maximum(
        ndimage.uniform_filter(valid.astype(np.float64), 5, mode="nearest"), 1e-6)
    centre = np.median(local[valid])
    spread = 1.4826 * np.median(np.abs(local[valid] - centre))
    outlying = valid & (np.abs(local - centre) > OUTLIER_SCALES * max(spread, 1e-12))
    # Small clouds, whose patches the average dilutes, stand out pixel by pixel.
    pixel_centre = np.median(residual[valid])
    pixel_spread = 1.4826 * np.median(np.abs(residual[valid] - pixel_centre))
    outlying |= valid & (np.abs(residual - pixel_centre) >
                         GROSS_OUTLIER_SCALES * max(pixel_spread, 1e-12))
    return valid & ~ndimage.binary_dilation(outlying, iterations=2)


def measure_scene_shift(multispectral: np.ndarray, valid: np.ndarray, reference: np.ndarray,
                        reference_valid: np.ndarray, pixel: float = 30.0
                        ) -> tuple[tuple[float, float], float, float, int]:
    """``(shift (dx, dy) metres, correlation before, correlation after, pixels)`` of the bands
    (6, h, w) on a grid of ``pixel`` metres against ``reference`` (h, w) on the same grid
    (module docstring). The reference is weighted by the mask of the pixels that count,
    blurred by one pixel, and the fit is not: a weight shared by both would itself match at
    zero shift. First the pixels where both have data count; then, three times, those where
    the reference agrees with the fit moved back by the last shift (:func:`agreeing_pixels`;
    ``pixels`` counts the last). "After" is the fit moved back by the shift, on the agreeing
    pixels 3 pixels away from the window's edges."""
    both = valid & reference_valid
    fitted, agree = robust_fit(multispectral, valid, reference, both), both
    shift = (0.0, 0.0)
    for step in range(4):
        if step:
            agree = agreeing_pixels(_move_back(fitted, shift, pixel), reference, both)
            fitted = fit_to_reference(multispectral, valid, reference, agree)
        weight = ndimage.gaussian_filter(agree.astype(np.float64), 1.0)
        # Centred, and 0 where the reference has no data: no rim at its edge.
        centred = np.where(reference_valid, reference - reference[agree].mean(), 0.0)
        shift = measure_shift(centred * weight, fitted, pixel)
    inner = agree.copy()
    inner[:3], inner[-3:], inner[:, :3], inner[:, -3:] = False, False, False, False
    return (shift, _correlation(fitted, reference, inner),
            _correlation(_move_back(fitted, shift, pixel), reference, inner), int(agree.sum()))


def register_scene(read_window: Callable[[], tuple[np.ndarray, np.ndarray]],
                   window_grid: GeoBox, reference: str,
                   tolerance_m: float = SHIFT_TOLERANCE_M,
                   max_shift_m: float = MAX_SCENE_SHIFT_M) -> SceneRegistration:
    """Measure the scene's shift against ``reference`` on a window and decide whether to
    correct it (module docstring). ``read_window()`` returns the window's ``(multispectral
    (6, h, w), valid (h, w))`` on ``window_grid`` (30 m)."""
    multispectral, valid = read_window()
    image, image_valid = read_reference(reference, window_grid)
    described = describe_file(reference)
    pixels = int((valid & image_valid).sum())
    if pixels < MIN_REGISTRATION_PIXELS:
        return SceneRegistration(reference, None, (0.0, 0.0), pixels=pixels,
                                 described=described,
                                 refused=f"only {pixels} pixels of the window measured on have "
                                 f"data in both (need {MIN_REGISTRATION_PIXELS})")
    shift, before, after, pixels = measure_scene_shift(multispectral, valid, image,
                                                       image_valid,
                                                       abs(window_grid.resolution.x))
    size = math.hypot(*shift)
    refused = ""
    if size > max_shift_m:
        refused = f"the measured shift, {size:.1f} m, is more than {max_shift_m:.0f} m"
    elif size > tolerance_m and not 1 - after < MIN_DECORRELATION_DROP * (1 - before):
        refused = (f"moving the scene by the measured shift ({shift[0]:+.1f}, {shift[1]:+.1f}"
                   f" m) does not make it fit the reference better (correlation {before:.4f}"
                   f" -> {after:.4f})")
    corrected = shift if size > tolerance_m and not refused else (0.0, 0.0)
    return SceneRegistration(reference, shift, corrected, before, after, pixels, refused,
                             described)
