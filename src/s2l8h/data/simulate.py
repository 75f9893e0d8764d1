"""Simulating a Landsat-8 observation of a Sentinel-2 scene (reduced-resolution protocol),
with the departures real Landsat/Sentinel-2 pairs show.

The clean simulation (DESIGN.md):

1. Spectral: the HLS bandpass adjustment MSI -> OLI (S2A, S2B or S2C coefficients).
2. Spatial: a Gaussian point-spread function whose modulation is 0.3 at the Landsat Nyquist
   frequency, σ = sqrt(-ln 0.3 / 2) / (π · 0.5 / 30 m) ≈ 14.8 m, then the exact area average
   over 30 m pixels (Landsat's pixel edges sit at 15 m modulo 30 m; training patches use a grid
   nested in the 10 m grid), computed on a 5 m sub-grid of the 10 m image.
3. Pan: 0.25·B02 + 0.40·B03 + 0.35·B04 (MSI), σ ≈ 7.4 m, area average over 15 m pixels of
   the same grid, stored as ρ' = ρ · sin(sun elevation) (Level-1 TOA without sun correction).

A :class:`Degradation` adds, each factor drawn at random per training sample by
:func:`sample_degradation` within :data:`TRAINING_RANGES`, or fixed in the named benchmark
:data:`CONDITIONS`:

- **Sensor noise**, signal dependent, per band: σ²(ρ) = σ_typ² · (0.5 + 0.5 ρ / ρ_typ), σ_typ
  = ρ_typ / SNR_typ with OLI's on-orbit SNR at typical radiance (Morfitt et al. 2015,
  "Landsat-8 Operational Land Imager (OLI) radiometric performance on-orbit", Remote Sens.
  7, 2208-2237, table 5: blue 364, green 302, red 227, NIR 204, SWIR1 265, SWIR2 334, pan
  149) and ρ_typ the TOA reflectance of OLI's typical radiance (L_typ · π / ESUN), ``noise_scale``
  times (1 to 3 × OLI in "realistic"; surface reflectance adds retrieval noise on top, so
  training goes up to 10 × and the benchmark also has absolute levels 0.001 and 0.002).
- **PSF widths** of the bands and of the pan, scaled independently (× 0.7-1.4): OLI's
  measured edge responses vary by band and focal-plane module and differ from the Gaussian
  model (Storey et al. 2014, "Landsat 8 OLI on-orbit geometric calibration and
  performance", Remote Sens. 6, 11127-11152; the reduced-resolution literature uses MTF 0.2-0.4
  at Nyquist, Vivone et al. 2015).
- **Misregistration** of the bands against the Sentinel-2 truth and of the pan against the
  bands, in metres, up to half a pixel (15 m and 7.5 m): Landsat-8 / Sentinel-2
  misregistration was of order 5-12 m and larger in places before both were tied to the
  Sentinel-2 global reference image (Storey et al. 2016, Remote Sens. Environ. 186, 121-122;
  Skakun et al. 2017, Remote Sens. Environ. 203), smaller since (Landsat Collection 2; HLS
  v2.0 user guide), by how much varying by scene; pre-collection products reference pixel
  centres, a 7.5 m pan offset when read as corners.
- **Per-band gain and offset** between the Landsat input and the Sentinel-2 truth: the
  surface reflectances of different atmospheric corrections disagree by about ±0.01
  (Doxani et al. 2018, "Atmospheric correction inter-comparison exercise", Remote Sens. 10,
  352; Vermote et al. 2016, Remote Sens. Environ. 185, 46-56).
- **Level-1 pan radiometry**: the real pan is TOA reflectance without the sun correction,
  ρ' = sin(sun elevation) · (ρ_path + T · ρ_surface): path reflectance ρ_path 0-0.08 and
  transmittance T 0.80-1.0 in the pan's 500-680 nm range for clear to moderately hazy
  atmospheres (6S-type estimates, e.g. Kaufman 1989; Vermote et al. 2016), sun elevation
  20-70°.
- **Footprints**: the pan and the bands do not cover the same footprint at scene edges; the
  pan can miss a band of the image (its pixels set to no data, read as 0 as the scene reader
  does).

The Sentinel-2 image itself, on its 10 m grid, is the target.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from scipy import ndimage

from s2l8h.bandpass import PLATFORMS, Platform, msi_to_oli
from s2l8h.bands import SENTINEL2_BANDS, SR_OFFSET, SR_SCALE
from s2l8h.io.errors import OutputError
from s2l8h.io.grid import WorkingGrids
from s2l8h.noise import OLI_REFLECTANCE_TYPICAL as OLI_REFLECTANCE_TYPICAL  # re-exported
from s2l8h.noise import OLI_SNR_TYPICAL as OLI_SNR_TYPICAL  # re-exported
from s2l8h.noise import oli_noise_std
from s2l8h.resolution import MTF_AT_NYQUIST as MTF_AT_NYQUIST  # re-exported
from s2l8h.resolution import psf_sigma

PAN_WEIGHTS = (0.25, 0.40, 0.35)
PAN_MULT, PAN_ADD = 2.0e-5, -0.1
SIMULATED_PRODUCT = "LC08_L2SP_000000_{date}_{date}_02_T1"
SIMULATED_L1_PRODUCT = "LC08_L1TP_000000_{date}_{date}_02_T1"

@dataclass(frozen=True)
class Degradation:
    """The departures of one simulated Landsat observation from its Sentinel-2 truth.

    Shifts are (dx, dy) in metres (east, north) of the image content: ``shift_ms`` moves the
    bands against the truth, ``shift_pan`` the pan against the bands. ``gain``/``offset``
    per band (blue ... swir22) act on OLI reflectance. The pan is
    ``sin(sun_elevation) · (pan_path + pan_transmittance · ρ)``. ``pan_gap`` is the
    fraction of the image width (left edge) where the pan has no data. ``noise_scale`` is a
    multiple of OLI's noise (:func:`oli_noise_std`); ``noise_std`` adds white noise of that σ
    (reflectance) to bands and pan.
    """

    platform: str = "S2A"
    noise_scale: float = 0.0
    noise_std: float = 0.0
    psf_scale_ms: float = 1.0
    psf_scale_pan: float = 1.0
    shift_ms: tuple[float, float] = (0.0, 0.0)
    shift_pan: tuple[float, float] = (0.0, 0.0)
    gain: tuple[float, ...] = (1.0,) * 6
    offset: tuple[float, ...] = (0.0,) * 6
    sun_elevation: float = 50.0
    pan_path: float = 0.0
    pan_transmittance: float = 1.0
    pan_gap: float = 0.0

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}, got {self.platform!r}")
        if len(self.gain) != 6 or len(self.offset) != 6:
            raise ValueError("gain and offset need six values (blue ... swir22)")
        if not 0 < self.sun_elevation <= 90:
            raise ValueError(f"sun elevation must be in (0, 90] degrees, got "
                             f"{self.sun_elevation}")
        if self.psf_scale_ms <= 0 or self.psf_scale_pan <= 0:
            raise ValueError("PSF scales must be positive")
        if self.noise_scale < 0 or self.noise_std < 0 or not 0 <= self.pan_gap < 1:
            raise ValueError("noise must be >= 0 and pan_gap in [0, 1)")

    def to_dict(self) -> dict[str, object]:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}


#: Named benchmark conditions: each one departure (or all of them, "realistic").
CONDITIONS: dict[str, Degradation] = {
    "clean": Degradation(),
    "noise-oli": Degradation(noise_scale=1.0),
    "noise-3x": Degradation(noise_scale=3.0),
    "noise-0.001": Degradation(noise_std=0.001),
    "noise-0.002": Degradation(noise_std=0.002),
    "misregistration": Degradation(shift_ms=(9.0, -12.0)),
    "psf-sharper": Degradation(psf_scale_ms=0.7, psf_scale_pan=0.7),
    "psf-blurrier": Degradation(psf_scale_ms=1.4, psf_scale_pan=1.4),
    "bandpass-s2b": Degradation(platform="S2B"),
    "bandpass-s2c": Degradation(platform="S2C"),
    "l1-pan": Degradation(sun_elevation=35.0, pan_path=0.05, pan_transmittance=0.85),
    "pan-shift": Degradation(shift_pan=(7.5, 0.0)),
    "atmosphere": Degradation(offset=(0.01, -0.008, 0.006, -0.01, 0.008, -0.006)),
    "realistic": Degradation(platform="S2B", noise_scale=2.0, psf_scale_ms=1.15,
                             psf_scale_pan=0.85, shift_ms=(6.0, -4.0), shift_pan=(3.0, 4.0),
                             offset=(0.004, -0.003, 0.002, -0.005, 0.004, -0.002),
                             gain=(1.01, 0.99, 1.0, 1.02, 0.99, 1.01), sun_elevation=40.0,
                             pan_path=0.04, pan_transmittance=0.88),
}


@dataclass(frozen=True)
class DegradationRanges:
    """Ranges from which :func:`sample_degradation` draws (uniform unless said)."""

    platforms: tuple[str, ...] = PLATFORMS
    noise_scale: tuple[float, float] = (0.5, 10.0)  # log-uniform
    psf_scale: tuple[float, float] = (0.7, 1.4)
    shift_ms_m: float = 15.0  # each axis: normal, σ = a third of this, clipped to ±this
    shift_pan_m: float = 7.5  # each axis: uniform ±
    gain: float = 0.02  # 1 ± this
    offset: float = 0.01  # ± this
    sun_elevation: tuple[float, float] = (20.0, 70.0)
    pan_path: tuple[float, float] = (0.0, 0.08)
    pan_transmittance: tuple[float, float] = (0.8, 1.0)
    pan_gap_probability: float = 0.1
    pan_gap: tuple[float, float] = (0.1, 0.5)
    clean_probability: float = 0.1  # a draw with no departure at all


TRAINING_RANGES = DegradationRanges()


def sample_degradation(rng: np.random.Generator,
                       ranges: DegradationRanges = TRAINING_RANGES) -> Degradation:
    """One random :class:`Degradation` (see :class:`DegradationRanges`)."""
    if rng.random() < ranges.clean_probability:
        return Degradation(platform=str(rng.choice(ranges.platforms)),
                           sun_elevation=float(rng.uniform(*ranges.sun_elevation)))
    low, high = np.log(ranges.noise_scale)
    shift_sigma = ranges.shift_ms_m / 3
    return Degradation(
        platform=str(rng.choice(ranges.platforms)),
        noise_scale=float(np.exp(rng.uniform(low, high))),
        psf_scale_ms=float(rng.uniform(*ranges.psf_scale)),
        psf_scale_pan=float(rng.uniform(*ranges.psf_scale)),
        shift_ms=tuple(float(v) for v in np.clip(rng.normal(0, shift_sigma, 2),
                                                 -ranges.shift_ms_m, ranges.shift_ms_m)),
        shift_pan=tuple(float(v) for v in rng.uniform(-ranges.shift_pan_m,
                                                      ranges.shift_pan_m, 2)),
        gain=tuple(float(v) for v in 1 + rng.uniform(-ranges.gain, ranges.gain, 6)),
        offset=tuple(float(v) for v in rng.uniform(-ranges.offset, ranges.offset, 6)),
        sun_elevation=float(rng.uniform(*ranges.sun_elevation)),
        pan_path=float(rng.uniform(*ranges.pan_path)),
        pan_transmittance=float(rng.uniform(*ranges.pan_transmittance)),
        pan_gap=float(rng.uniform(*ranges.pan_gap))
        if rng.random() < ranges.pan_gap_probability else 0.0,
    )


@dataclass
class SimulatedScene:
    """A Landsat-like observation and its Sentinel-2 target.

    ``multispectral`` (6, h, w) OLI surface reflectance on ``lowres_grid`` (30 m, edges at
    15 m modulo 30 m); ``pan`` (2h, 2w) ρ' on ``pan_grid`` (15 m, same outer edges);
    ``target`` (6, H, W) Sentinel-2 reflectance on ``target_grid`` (10 m); ``valid`` masks for
    both resolutions; ``pan_valid`` where the pan has data.
    """

    multispectral: np.ndarray
    pan: np.ndarray
    lowres_valid: np.ndarray
    lowres_grid: GeoBox
    pan_grid: GeoBox
    target: np.ndarray
    target_valid: np.ndarray
    target_grid: GeoBox
    sun_elevation: float
    platform: str
    degradation: Degradation = field(default_factory=Degradation)
    pan_valid: np.ndarray | None = None


def landsat_grid(target: GeoBox, pixel: float = 30.0, phase: float | None = 15.0
                 ) -> tuple[GeoBox, int, int]:
    """The largest 30 m grid with edges at ``phase`` modulo ``pixel`` inside ``target`` (10 m)
    (``phase=None``: edges at ``target``'s corner), and its offset from ``target``'s corner
    in 5 m sub-pixels (columns, rows)."""
    affine = target.affine
    left, top = affine.c, affine.f
    right, bottom = left + affine.a * target.width, top + affine.e * target.height
    if phase is None:
        x0, y0 = left, top
    else:
        x0 = left + (phase - left) % pixel
        y0 = top - (top - phase) % pixel
    cols = int((right - x0) // pixel)
    rows = int((y0 - bottom) // pixel)
    if rows < 1 or cols < 1:
        raise ValueError("the Sentinel-2 image is smaller than one Landsat pixel")
    grid = GeoBox((rows, cols), Affine(pixel, 0, x0, 0, -pixel, y0), target.crs)
    return grid, round((x0 - left) / 5), round((top - y0) / 5)


def _area_average(image10: np.ndarray, offset_cols: int, offset_rows: int, rows: int,
                  cols: int, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks of 5 m sub-pixels (each 10 m pixel is 2 x 2 of
    them) starting ``offset`` sub-pixels from the corner: exact area integration."""
    fine = np.repeat(np.repeat(image10, 2, axis=-2), 2, axis=-1)
    fine = fine[..., offset_rows:offset_rows + rows * factor,
                offset_cols:offset_cols + cols * factor]
    shape = (*fine.shape[:-2], rows, factor, cols, factor)
    return fine.reshape(shape).mean(axis=(-3, -1))


def _blur_and_shift(image: np.ndarray, sigma: float, shift_m: tuple[float, float],
                    resolution: float) -> np.ndarray:
    """Convolve (..., H, W) with a Gaussian of ``sigma`` pixels centred ``shift_m`` (dx east,
    dy north, metres) away: the PSF and the misregistration in one separable pass (edges
    replicated)."""
    result = image
    for axis, moved in ((-1, shift_m[0] / resolution), (-2, -shift_m[1] / resolution)):
        radius = math.ceil(4 * sigma + abs(moved)) + 1
        offsets = np.arange(-radius, radius + 1, dtype=np.float64)
        weights = np.exp(-0.5 * ((offsets + moved) / sigma) ** 2)
        result = ndimage.correlate1d(result, weights / weights.sum(), axis=axis,
                                     mode="nearest")
    return result


def move_content(image: np.ndarray, shift_m: tuple[float, float], resolution: float = 10.0
                 ) -> np.ndarray:
    """(..., H, W) with its content moved ``shift_m`` (dx east, dy north, metres) on a grid of
    ``resolution`` metres, as :func:`degrade` moves the bands against the truth (cubic
    spline, edges replicated): the image a perfect reconstruction of a misregistered
    observation would give."""
    moved = (0.0,) * (image.ndim - 2) + (-shift_m[1] / resolution, shift_m[0] / resolution)
    return ndimage.shift(image.astype(np.float64), moved, order=3, mode="nearest")


def degrade(
    reflectance: np.ndarray, degradation: Degradation, rng: np.random.Generator, *,
    resolution: float = 10.0, offset_cols: int = 0, offset_rows: int = 0,
    rows: int | None = None, cols: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Landsat bands and pan from gap-free Sentinel-2 ``reflectance`` (6, H, W) at 10 m.

    The 30 m grid starts ``offset_cols``/``offset_rows`` 5 m sub-pixels from the corner and
    has ``rows`` x ``cols`` pixels (default: all that fit). Returns ``(multispectral (6,
    rows, cols) OLI reflectance, pan ρ' (2 rows, 2 cols), pan_valid (2 rows, 2 cols))``.
    """
    if rows is None:
        rows = (2 * reflectance.shape[-2] - offset_rows) // 6
    if cols is None:
        cols = (2 * reflectance.shape[-1] - offset_cols) // 6
    source = reflectance.astype(np.float64)
    oli = msi_to_oli(source, degradation.platform)  # type: ignore[arg-type]
    oli = oli * np.asarray(degradation.gain)[:, None, None] + \
        np.asarray(degradation.offset)[:, None, None]
    pan10 = np.tensordot(np.asarray(PAN_WEIGHTS), source[:3], axes=1)
    pan_shift = (degradation.shift_ms[0] + degradation.shift_pan[0],
                 degradation.shift_ms[1] + degradation.shift_pan[1])
    sigma_ms = degradation.psf_scale_ms * psf_sigma(30.0) / resolution
    sigma_pan = degradation.psf_scale_pan * psf_sigma(15.0) / resolution
    blurred = _blur_and_shift(oli, sigma_ms, degradation.shift_ms, resolution)
    pan_blurred = _blur_and_shift(pan10, sigma_pan, pan_shift, resolution)
    multispectral = _area_average(blurred, offset_cols, offset_rows, rows, cols, 6)
    pan = _area_average(pan_blurred, offset_cols, offset_rows, 2 * rows, 2 * cols, 3)
    if degradation.noise_scale > 0:
        for band in range(6):
            multispectral[band] += rng.standard_normal(multispectral[band].shape) * \
                degradation.noise_scale * oli_noise_std(multispectral[band], band)
        pan += rng.standard_normal(pan.shape) * degradation.noise_scale * oli_noise_std(pan, 6)
    if degradation.noise_std > 0:
        multispectral += rng.normal(0, degradation.noise_std, multispectral.shape)
        pan += rng.normal(0, degradation.noise_std, pan.shape)
    pan_toa = degradation.pan_path + degradation.pan_transmittance * pan
    pan_prime = pan_toa * math.sin(math.radians(degradation.sun_elevation))
    pan_valid = np.ones(pan.shape, dtype=bool)
    if degradation.pan_gap > 0:
        pan_valid[:, :round(degradation.pan_gap * pan.shape[1])] = False
        pan_prime[~pan_valid] = 0.0
    return multispectral, pan_prime, pan_valid


def simulate_landsat(
    reflectance: np.ndarray,
    valid: np.ndarray,
    grid: GeoBox,
    *,
    platform: Platform = "S2A",
    shift_m: tuple[float, float] = (0.0, 0.0),
    noise_std: float = 0.0,
    sun_elevation: float = 50.0,
    seed: int = 0,
    degradation: Degradation | None = None,
    phase: float | None = 15.0,
) -> SimulatedScene:
    """Simulate Landsat-8 from Sentinel-2 ``reflectance`` (6, H, W) on the 10 m ``grid``.

    Either a :class:`Degradation` or, for a simple one, ``platform``, ``shift_m`` (dx, dy:
    the scene content moved east/north by that many metres), ``noise_std`` (Gaussian noise
    added to every simulated band) and ``sun_elevation``. ``phase``: Landsat pixel edges at
    15 m modulo 30 m (default) or ``None`` for a 30 m grid nested in ``grid``.
    """
    if reflectance.shape[0] != 6 or reflectance.shape[1:] != valid.shape:
        raise ValueError("reflectance must be (6, H, W) with a (H, W) valid mask")
    resolution = grid.affine.a
    if not math.isclose(resolution, 10.0) or not math.isclose(-grid.affine.e, 10.0):
        raise ValueError("simulate_landsat needs the Sentinel-2 10 m grid")
    if degradation is None:
        degradation = Degradation(platform=platform, shift_ms=tuple(shift_m),
                                  noise_std=noise_std, sun_elevation=sun_elevation)
    filled = np.where(valid, reflectance, np.nanmean(reflectance[:, valid], axis=1)[:, None,
                                                                                     None])
    lowres_grid, offset_cols, offset_rows = landsat_grid(grid, phase=phase)
    rows, cols = lowres_grid.shape
    multispectral, pan_prime, pan_valid = degrade(
        filled, degradation, np.random.default_rng(seed), resolution=resolution,
        offset_cols=offset_cols, offset_rows=offset_rows, rows=rows, cols=cols)
    invalid_fraction = _area_average((~valid).astype(np.float64), offset_cols, offset_rows,
                                     rows, cols, 6)
    lowres_valid = invalid_fraction == 0
    pan_grid = WorkingGrids.from_bands(lowres_grid).pan
    pan_valid &= np.kron(lowres_valid, np.ones((2, 2), dtype=bool))
    target = np.where(valid, reflectance, np.nan).astype(np.float32)
    return SimulatedScene(multispectral.astype(np.float32), pan_prime.astype(np.float32),
                          lowres_valid, lowres_grid, pan_grid, target, valid, grid,
                          degradation.sun_elevation, degradation.platform, degradation,
                          pan_valid)


def _write(path: Path, data: np.ndarray, grid: GeoBox, nodata: float | None,
           descriptions: list[str] | None = None) -> None:
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver="GTiff", width=grid.width, height=grid.height,
                       count=data.shape[0], dtype=data.dtype, crs=grid.crs.to_wkt(),
                       transform=grid.affine, nodata=nodata, tiled=True, compress="deflate",
                       blockxsize=256, blockysize=256) as dataset:
        dataset.write(data)
        for index, name in enumerate(descriptions or [], start=1):
            dataset.set_band_description(index, name)


def write_simulated_scene(simulated: SimulatedScene, folder: str | os.PathLike[str],
                          date: str = "20000101", overwrite: bool = False) -> tuple[Path, Path]:
    """Write the simulation as a Collection-2 Level-2 scene folder (SR_B2..SR_B7, QA_PIXEL,
    Level-1 B8 and MTL JSON files, so ``s2l8h harmonize`` reads it unchanged) and the target
    as ``target_s2_10m.tif`` (float32 reflectance, NaN nodata). Returns (scene folder, target)."""
    folder = Path(folder)
    scene = folder / "landsat"
    target_path = folder / "target_s2_10m.tif"
    if (scene.exists() or target_path.exists()) and not overwrite:
        raise OutputError(f"{folder}: already holds a simulated scene; pass overwrite=True to "
                          "replace it")
    scene.mkdir(parents=True, exist_ok=True)
    product = SIMULATED_PRODUCT.format(date=date)
    l1_product = SIMULATED_L1_PRODUCT.format(date=date)
    digital_numbers = np.clip(np.rint((simulated.multispectral - SR_OFFSET) / SR_SCALE), 1,
                              65535).astype(np.uint16)
    digital_numbers[:, ~simulated.lowres_valid] = 0
    for index, number in enumerate(range(2, 8)):
        _write(scene / f"{product}_SR_B{number}.TIF", digital_numbers[index],
               simulated.lowres_grid, 0)
    qa = np.where(simulated.lowres_valid, 21824, 1).astype(np.uint16)  # clear / fill
    _write(scene / f"{product}_QA_PIXEL.TIF", qa, simulated.lowres_grid, 1)
    pan_valid = simulated.pan_valid if simulated.pan_valid is not None else \
        np.kron(simulated.lowres_valid, np.ones((2, 2), dtype=bool))
    pan_dn = np.clip(np.rint((simulated.pan - PAN_ADD) / PAN_MULT), 1, 65535).astype(np.uint16)
    pan_dn[~pan_valid] = 0
    _write(scene / f"{l1_product}_B8.TIF", pan_dn, simulated.pan_grid, 0)
    rescaling = {}
    for band in range(1, 10):
        rescaling[f"REFLECTANCE_MULT_BAND_{band}"] = f"{PAN_MULT:.4E}"
        rescaling[f"REFLECTANCE_ADD_BAND_{band}"] = f"{PAN_ADD:.6f}"
    iso_date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    for name, level in ((product, "L2SP"), (l1_product, "L1TP")):
        document = {"LANDSAT_METADATA_FILE": {
            "PRODUCT_CONTENTS": {"LANDSAT_PRODUCT_ID": name, "PROCESSING_LEVEL": level,
                                 "ORIGIN": f"s2l8h simulation from Sentinel-2 "
                                           f"({simulated.platform})"},
            "IMAGE_ATTRIBUTES": {"SPACECRAFT_ID": "LANDSAT_8", "DATE_ACQUIRED": iso_date,
                                 "SUN_ELEVATION": f"{simulated.sun_elevation:.8f}"},
            "LEVEL1_RADIOMETRIC_RESCALING": rescaling}}
        (scene / f"{name}_MTL.json").write_text(json.dumps(document, indent=1))
    _write(target_path, simulated.target, simulated.target_grid, np.nan,
           list(SENTINEL2_BANDS))
    return scene, target_path
