"""Reduced-resolution benchmark: simulate Landsat from a Sentinel-2 scene, run every method on
the same pixels, score them against the Sentinel-2 scene, write tables and a report."""

from __future__ import annotations

import csv
import json
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from s2l8h.data.simulate import (
    CONDITIONS,
    Degradation,
    SimulatedScene,
    move_content,
    simulate_landsat,
    write_simulated_scene,
)
from s2l8h.evaluate.baselines import BASELINES, run_baseline
from s2l8h.evaluate.metrics import (
    BANDS,
    flat_area_noise,
    flat_pixels,
    high_frequency_detail,
    image_metrics,
    noise_gain,
    uncertainty_metrics,
)
from s2l8h.inference.coregister import SceneRegistration, register_scene
from s2l8h.io.errors import InputError, OptionError, OutputError
from s2l8h.io.grid import crs_name, moved_grid, sentinel2_grid, warp
from s2l8h.io.reference import read_reference
from s2l8h.io.sentinel2 import read_sentinel2
from s2l8h.options import Options

TABLE_COLUMNS = (("overall", "psnr", "PSNR"), ("overall", "ssim", "SSIM"),
                 ("overall", "nrmse", "NRMSE"), ("overall", "rmse", "RMSE"),
                 ("overall", "mae", "MAE"), ("overall", "sam", "SAM°"),
                 ("overall", "ergas", "ERGAS"), ("NDVI", "psnr", "NDVI PSNR"),
                 ("NDVI", "ssim", "NDVI SSIM"), ("NDVI", "pearson", "NDVI r"))


def read_prediction(path: str | os.PathLike[str], grid: GeoBox | None = None
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Read a harmonized raster: ``(reflectance (6, H, W), std (6, H, W) or None, valid)``.

    Bands are found by description (B02 … B12, B02_std …, mask) or, without descriptions, taken
    as the first six. Scale/offset and nodata are applied. With ``grid``, the raster is warped
    onto it (bilinear; mask nearest) if its own grid differs.
    """
    path = Path(path)
    try:
        with rasterio.open(path) as dataset:
            own = GeoBox.from_rio(dataset)
            if grid is not None and own != grid:
                options = dict(crs=grid.crs.to_wkt(), transform=grid.affine, width=grid.width,
                               height=grid.height)
                with WarpedVRT(dataset, resampling=Resampling.bilinear, **options) as vrt:
                    data = vrt.read(masked=True).astype(np.float64)
                with WarpedVRT(dataset, resampling=Resampling.nearest, **options) as vrt:
                    nearest = vrt.read(masked=True).astype(np.float64)
            else:
                data = nearest = dataset.read(masked=True).astype(np.float64)
            names = list(dataset.descriptions)
            scales, offsets = np.array(dataset.scales), np.array(dataset.offsets)
    except rasterio.errors.RasterioIOError as error:
        raise InputError(path, f"not a readable raster ({error})") from None
    values = (data * scales[:, None, None] + offsets[:, None, None]).filled(np.nan)
    finite = values[:6][np.isfinite(values[:6])]
    if finite.size and float(np.median(finite)) > 1.5:
        raise InputError(path, f"median value {float(np.median(finite)):.4g} is not a "
                         "reflectance (0..1): digital numbers (e.g. reflectance x 10000) "
                         "without scale/offset tags? Tag the scale (e.g. gdal_edit.py -scale "
                         "0.0001) or convert to reflectance")
    if all(band in names for band in BANDS):
        reflectance = np.stack([values[names.index(band)] for band in BANDS])
        std = np.stack([values[names.index(f"{band}_std")] for band in BANDS]) \
            if all(f"{band}_std" in names for band in BANDS) else None
    elif values.shape[0] >= 6:
        reflectance, std = values[:6], None
    else:
        raise InputError(path, f"has {values.shape[0]} band(s); 6 Sentinel-2 bands needed")
    valid = np.isfinite(reflectance).all(axis=0)
    if "mask" in names:
        valid &= nearest[names.index("mask")].filled(0) == 1
    return reflectance.astype(np.float32), None if std is None else std.astype(np.float32), \
        valid


#: Border (10 m px) the benchmark leaves out, where the simulation saw the image edge; ``s2l8h
#: evaluate --margin 6`` scores the same pixels of a benchmark prediction.
EDGE_MARGIN = 6


def _grid_text(grid: GeoBox) -> str:
    """``"<rows> x <cols> px of <x size> x <y size> in EPSG:n, origin <x>, <y>"`` (CRS
    units: metres to the centimetre, degrees to 8 decimals), and the transform's rotation
    terms where they are not 0."""
    affine, digits = grid.affine, 8 if grid.crs.geographic else 2
    rotation = f", rotation {affine.b:g}, {affine.d:g}" if affine.b or affine.d else ""
    return (f"{grid.height} x {grid.width} px of {affine.a:.10g} x {-affine.e:.10g} in "
            f"{crs_name(grid.crs)}, origin {affine.c:.{digits}f}, {affine.f:.{digits}f}"
            f"{rotation}")


def evaluate_files(prediction: str | os.PathLike[str], reference: str | os.PathLike[str],
                   mask: str | os.PathLike[str] | None = None, *, margin: int = 0,
                   warp: bool = False) -> dict[str, dict[str, float]]:
    """Metrics of a prediction raster against a reference raster (on the reference's grid).

    A prediction on another grid is an error unless ``warp`` (then it is warped onto the
    reference's grid, bilinear; mask nearest). ``margin`` (px) leaves out a border of the
    reference grid (the benchmark leaves out :data:`EDGE_MARGIN`)."""
    if margin < 0:
        raise OptionError(f"--margin must be 0 or more pixels, got {margin}")
    reference_values, _, reference_valid = read_prediction(reference)
    with rasterio.open(reference) as dataset:
        grid = GeoBox.from_rio(dataset)
    try:
        with rasterio.open(prediction) as dataset:
            own = GeoBox.from_rio(dataset)
    except rasterio.errors.RasterioIOError as error:
        raise InputError(prediction, f"not a readable raster ({error})") from None
    if own != grid and not warp:
        raise InputError(prediction, f"is on another grid than the reference ({_grid_text(own)}"
                         f" vs {_grid_text(grid)}); write it on the reference's grid (s2l8h "
                         "harmonize --like REFERENCE) or pass --warp to resample it (bilinear)")
    predicted, std, valid = read_prediction(prediction, grid)
    valid &= reference_valid
    if margin:
        valid[:margin] = valid[-margin:] = False
        valid[:, :margin] = valid[:, -margin:] = False
    if mask is not None:
        try:
            with rasterio.open(mask) as dataset:
                mask_grid = GeoBox.from_rio(dataset)
                if mask_grid != grid:
                    raise InputError(mask, f"mask is not on the reference's grid "
                                     f"({_grid_text(mask_grid)} vs {_grid_text(grid)})")
                valid &= dataset.read(1) != 0
        except rasterio.errors.RasterioIOError as error:
            raise InputError(mask, f"not a readable raster ({error})") from None
    if not valid.any():
        raise InputError(prediction, "no pixel is valid in both the prediction and the "
                         "reference (and the mask/margin)")
    results = image_metrics(predicted, reference_values, valid)
    if std is not None:
        results["uncertainty"] = uncertainty_metrics(predicted, std, reference_values, valid)
    return results


#: The name of the reference row of a misregistered condition (:func:`_run_condition`).
MISREGISTERED_TRUTH = "truth, misregistered (reference)"


@dataclass
class MethodResult:
    name: str
    kind: str  # "model" | "baseline" | "reference" (not a method: see MISREGISTERED_TRUTH)
    seconds: float
    prediction: np.ndarray = field(repr=False)
    std: np.ndarray | None = field(default=None, repr=False)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    #: A model's input noise estimate per band (reflectance), as its run measured it.
    input_noise: list[float] | None = None
    #: How far a model's networks would move each band's level over the tiles it ran (their
    #: level minus the input's: :meth:`s2l8h.inference.consistency.LevelShifts.summary`).
    level_shift: dict[str, object] | None = None


@dataclass
class BenchmarkResult:
    """Methods scored against a reference: the Sentinel-2 scene of a ``simulation``, or a
    real ``reference`` (the real-data reduced-resolution protocol)."""

    simulation: SimulatedScene | None
    methods: list[MethodResult]
    valid: np.ndarray
    output_dir: Path
    settings: dict[str, object]
    reference: np.ndarray | None = None

    @property
    def target(self) -> np.ndarray:
        """The reference the methods are scored against, (6, H, W)."""
        if self.reference is not None:
            return self.reference
        assert self.simulation is not None
        return self.simulation.target

    def table_rows(self) -> list[dict[str, object]]:
        rows = []
        for method in self.methods:
            row: dict[str, object] = {"method": method.name, "kind": method.kind}
            for group, key, title in TABLE_COLUMNS:
                row[title] = method.metrics[group][key]
            for band in BANDS:
                row[f"{band} PSNR"] = method.metrics[band]["psnr"]
            detail = method.metrics.get("detail", {})
            row["HF ratio"] = detail.get("hf_ratio")
            row["HF skill"] = detail.get("hf_skill")
            row["flat noise"] = detail.get("flat_noise")
            row["noise gain"] = detail.get("noise_gain")
            for band in BANDS:
                row[f"HF ratio {band}"] = detail.get(f"hf_ratio_{band}")
                row[f"noise gain {band}"] = detail.get(f"noise_gain_{band}")
            row["seconds"] = method.seconds
            uncertainty = method.metrics.get("uncertainty")
            for key in ("coverage_68", "coverage_95", "ece", "spearman_std_abs_error",
                        *(f"coverage_68_{band}" for band in BANDS)):
                row[key] = uncertainty.get(key) if uncertainty else None
            rows.append(row)
        return rows

    def markdown_table(self) -> str:
        columns = ["method", *[title for _, _, title in TABLE_COLUMNS], "HF ratio",
                   "HF ratio per band", "HF skill", "flat noise", "noise gain",
                   "noise gain per band", "cov68", "cov95", "cov68 per band", "seconds"]
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for method in self.methods:
            cells = [method.name]
            for group, key, _ in TABLE_COLUMNS:
                cells.append(format_cell(method.metrics[group][key], 4 if key in (
                    "nrmse", "rmse", "mae", "ssim", "pearson") else 2))
            detail = method.metrics.get("detail") or {}
            cells.append(format_cell(detail.get("hf_ratio")))
            cells.append(per_band_cell(detail, "hf_ratio"))
            cells.append(format_cell(detail.get("hf_skill")))
            cells.append(format_cell(detail.get("flat_noise"), 4))
            cells.append(format_cell(detail.get("noise_gain")))
            cells.append(per_band_cell(detail, "noise_gain"))
            uncertainty = method.metrics.get("uncertainty") or {}
            cells.append(format_cell(uncertainty.get("coverage_68")))
            cells.append(format_cell(uncertainty.get("coverage_95")))
            cells.append(per_band_cell(uncertainty, "coverage_68"))
            cells.append(f"{method.seconds:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def per_band_cell(metrics: dict[str, Any], key: str) -> str:
    """A table cell with ``metrics``' ``<key>_<band>`` of every band, B02 … B12 separated by
    " / ", or "–" when any band's is missing or was not measured (NaN)."""
    values = [metrics.get(f"{key}_{band}") for band in BANDS]
    if any(value is None or math.isnan(value) for value in values):
        return "–"
    return " / ".join(format_cell(value) for value in values)


def format_cell(value: float | None, digits: int = 2) -> str:
    """A table cell: ``value`` with ``digits`` decimals, or "–" when it was not measured
    (absent or NaN)."""
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _gain_cell(detail: dict[str, Any]) -> str:
    """The noise gain over the bands and, in brackets, the largest band's: "0.92 (B8A
    1.07)"; the mean alone when the bands' are missing."""
    pooled = format_cell(detail.get("noise_gain"))
    bands = {band: detail.get(f"noise_gain_{band}") for band in BANDS}
    if any(value is None or math.isnan(value) for value in bands.values()):
        return pooled
    band = max(bands, key=lambda name: bands[name])
    return f"{pooled} ({band} {format_cell(bands[band])})"


def _finite_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN: a measure that could not be taken; inf: the
    PSNR of an exact copy) as ``None``, so that the JSON written is standard (null, not
    NaN)."""
    if isinstance(value, dict):
        return {key: _finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _crop_grid(grid: GeoBox, bounds: tuple[float, float, float, float] | None) -> GeoBox:
    if bounds is None:
        return grid
    cropped = sentinel2_grid(bounds, grid.crs, grid.affine.a)
    return cropped


@dataclass(frozen=True)
class BenchmarkOptions(Options):
    """What :func:`run_benchmark` and :func:`run_conditions` share: the methods (``models``,
    each a name or path, an entry ``a+b`` an ensemble; ``baselines``), the Sentinel-2 crop
    (``bounds`` in the image's CRS; ``offset`` added to its reflectance; ``b08_as_b8a``: B08
    stands in for a missing B8A, :func:`s2l8h.io.sentinel2.find_sentinel2_bands`), how the
    models run
    (``uncertainty``; ``consistency`` and ``filter_input_noise``, as in ``harmonize``;
    ``tile``/``overlap`` in output pixels; ``progress``), ``reference`` (a raster in the
    Sentinel-2 geometry, not one of the scored bands, e.g. the scene's own B08: the simulated
    Landsat scene is registered to it before every method runs, baselines included, as
    ``harmonize --reference`` registers a real scene), ``overwrite``
    (replace earlier results) and ``report`` (also write ``report.html``)."""

    models: tuple[str | os.PathLike[str], ...] = ()
    baselines: tuple[str, ...] = BASELINES
    bounds: tuple[float, float, float, float] | None = None
    offset: float = 0.0
    b08_as_b8a: bool = False
    uncertainty: str = "auto"
    consistency: bool = True
    filter_input_noise: bool = True
    tile: int = 512
    overlap: int = 64
    reference: str | None = None
    overwrite: bool = False
    progress: bool = False
    report: bool = True

    WHAT: ClassVar[str] = "benchmark"

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "baselines", tuple(self.baselines))
        if self.bounds is not None:
            object.__setattr__(self, "bounds", tuple(self.bounds))
        if self.reference is not None:
            object.__setattr__(self, "reference", os.fspath(self.reference))

    def prepare(self, sentinel2: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                output_dir: str | os.PathLike[str]
                ) -> tuple[Path, np.ndarray, np.ndarray, GeoBox]:
        """The checked output folder and the Sentinel-2 image (reflectance, valid, grid);
        every model loads once first, so that a wrong name or path fails before any work."""
        from s2l8h.inference.harmonize import resolve_models

        folder = _prepare_output(output_dir, self.baselines, self.overwrite)
        for entry in self.models:
            resolve_models(str(entry).split("+"))
        scene = _read_scene(sentinel2, self.offset, self.bounds, self.b08_as_b8a)
        if self.reference is not None:
            _, covered = read_reference(self.reference, scene[2])
            if not covered.any():
                raise InputError(self.reference, "reference: no data over the benchmark's "
                                 "Sentinel-2 crop")
        folder.mkdir(parents=True, exist_ok=True)  # only once the inputs have been read
        return (folder, *scene)


def run_benchmark(
    sentinel2: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    options: BenchmarkOptions | None = None,
    *,
    platform: str = "S2A",
    noise_std: float = 0.0,
    shift_m: tuple[float, float] = (0.0, 0.0),
    sun_elevation: float = 50.0,
    degradation: Degradation | None = None,
    **changes: Any,
) -> BenchmarkResult:
    """Simulate, run the models and baselines of ``options`` (and/or its fields as keyword
    arguments, see :class:`BenchmarkOptions`), score all on the pixels every method covers,
    write ``results.{md,csv,json}`` (and ``report.html``) into ``output_dir``.

    The simulation is ``degradation``, or the clean one with ``platform``, ``noise_std``,
    ``shift_m`` (metres east, north) and ``sun_elevation`` (degrees)."""
    options = BenchmarkOptions.build(options, **changes)
    output_dir, reflectance, valid, grid = options.prepare(sentinel2, output_dir)
    if degradation is None:
        degradation = Degradation(platform=platform, noise_std=noise_std,
                                  shift_ms=tuple(shift_m), sun_elevation=sun_elevation)
    result = _run_condition(reflectance, valid, grid, degradation, output_dir, options)
    result.settings.update({"sentinel2": str(sentinel2), "bounds": options.bounds,
                            "offset": options.offset, "b08_as_b8a": options.b08_as_b8a,
                            "platform": degradation.platform,
                            "noise_std": degradation.noise_std,
                            "shift_m": list(degradation.shift_ms),
                            "sun_elevation": degradation.sun_elevation})
    write_tables(result)
    if options.report:
        from s2l8h.evaluate.report import write_report

        write_report(result, output_dir / "report.html")
    return result


def _prepare_output(output_dir: str | os.PathLike[str], baselines: Sequence[str],
                    overwrite: bool) -> Path:
    """``output_dir`` checked (no earlier results in it unless ``overwrite``; known
    ``baselines``), not made: callers make it once their inputs have been read, so that bad
    input leaves no empty folder behind."""
    output_dir = Path(output_dir)
    targets = [output_dir / name for name in ("results.md", "results.csv", "results.json",
                                              "report.html")]
    existing = [str(path) for path in targets if path.exists()]
    if existing and not overwrite:
        raise OutputError(f"{', '.join(existing)} already exist; pass --overwrite")
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise OptionError(f"unknown baselines {unknown}; known: {', '.join(BASELINES)}")
    return output_dir


def _read_scene(sentinel2, offset: float, bounds: tuple[float, float, float, float] | None,
                b08_as_b8a: bool = False) -> tuple[np.ndarray, np.ndarray, GeoBox]:
    reflectance, valid, grid = read_sentinel2(sentinel2, offset=offset, b08_as_b8a=b08_as_b8a)
    if bounds is not None:
        grid = _crop_grid(grid, bounds)
        reflectance, valid, grid = read_sentinel2(sentinel2, offset=offset, grid=grid,
                                                  b08_as_b8a=b08_as_b8a)
    return reflectance, valid, grid


def _register_simulation(simulation: SimulatedScene, reference: str | None
                         ) -> SceneRegistration | None:
    """The simulated scene registered to ``reference`` as ``harmonize`` registers a scene
    (:func:`s2l8h.inference.coregister.register_scene`, on the whole simulated scene: it is
    smaller than ``harmonize``'s central window); ``None`` without a reference."""
    if reference is None:
        return None
    valid = simulation.lowres_valid & np.isfinite(simulation.multispectral).all(axis=0)
    return register_scene(lambda: (np.nan_to_num(simulation.multispectral), valid),
                          simulation.lowres_grid, reference)


def score_methods(methods: Sequence[MethodResult], reference: np.ndarray,
                  valid: np.ndarray) -> None:
    """Fill each method's metrics (image, detail, uncertainty where it has σ, and a model's
    level shift where its run measured one)."""
    for method in methods:
        method.metrics = image_metrics(method.prediction, reference, valid)
        ratios, skills = high_frequency_detail(method.prediction, reference, valid)
        method.metrics["detail"] = {
            "hf_ratio": float(np.mean(ratios)),
            **{f"hf_ratio_{band}": ratio for band, ratio in zip(BANDS, ratios, strict=True)},
            "hf_skill": float(np.mean(skills)),
            **{f"hf_skill_{band}": skill for band, skill in zip(BANDS, skills, strict=True)},
            "flat_noise": flat_area_noise(method.prediction, reference, valid)}
        if method.std is not None:
            method.metrics["uncertainty"] = uncertainty_metrics(
                method.prediction, method.std, reference, valid)
        if method.level_shift is not None:
            method.metrics["level_shift"] = dict(method.level_shift)


def _run_condition(
    reflectance: np.ndarray, valid: np.ndarray, grid: GeoBox, degradation: Degradation,
    output_dir: Path, options: BenchmarkOptions, seed: int = 0,
) -> BenchmarkResult:
    """Simulate one condition into ``output_dir/simulation``, run and score every method."""
    from s2l8h.inference.harmonize import harmonize

    models, baselines = options.models, options.baselines
    simulation = simulate_landsat(reflectance, valid, grid, degradation=degradation,
                                  seed=seed)
    scene_dir, target_path = write_simulated_scene(simulation, output_dir / "simulation",
                                                   overwrite=True)
    sine = math.sin(math.radians(degradation.sun_elevation))
    registration = _register_simulation(simulation, options.reference)
    lowres_grid, pan_grid = simulation.lowres_grid, simulation.pan_grid
    if registration is not None:
        lowres_grid = moved_grid(lowres_grid, registration.corrected_m)
        pan_grid = moved_grid(pan_grid, registration.corrected_m)
    methods: list[MethodResult] = []
    for name in baselines:
        started = time.perf_counter()
        prediction = run_baseline(name, simulation.multispectral, lowres_grid,
                                  np.where(simulation.pan_valid, simulation.pan, np.nan)
                                  if simulation.pan_valid is not None else simulation.pan,
                                  pan_grid, grid, pan_sun_sine=sine)
        methods.append(MethodResult(name, "baseline", time.perf_counter() - started,
                                    prediction))
    for entry in models:
        members = str(entry).split("+")
        label = " + ".join(Path(member).name or member for member in members)
        output = output_dir / "predictions" / f"{label.replace(' + ', '+')}.tif"
        output.parent.mkdir(exist_ok=True)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = harmonize(scene_dir, output, models=members, like=target_path,
                      uncertainty=options.uncertainty, consistency=options.consistency,
                      filter_input_noise=options.filter_input_noise,
                      tile=options.tile, reference=options.reference,
                      overlap=options.overlap, dtype="float32", overwrite=True,
                      progress=options.progress, mask_flags=())
        seconds = time.perf_counter() - started
        prediction, std, _ = read_prediction(output)
        methods.append(MethodResult(label, "model", seconds, prediction, std,
                                    input_noise=run.extra["input_checks"].noise,
                                    level_shift=run.extra["level_shift"]))
    if any(degradation.shift_ms):
        # What a perfect reconstruction of the scene as Landsat saw it scores: the truth
        # moved by the bands' misregistration, which no method can see in its input.
        target = simulation.target
        filled = np.where(np.isfinite(target), target,
                          np.nanmean(target, axis=(1, 2))[:, None, None])
        methods.append(MethodResult(MISREGISTERED_TRUTH, "reference", 0.0,
                                    move_content(filled, degradation.shift_ms,
                                                 grid.affine.a).astype(np.float32)))
    common = simulation.target_valid.copy()
    for method in methods:
        common &= np.isfinite(method.prediction).all(axis=0)
    # Leave out a margin where the simulation saw the image edge.
    margin = EDGE_MARGIN
    common[:margin] = common[-margin:] = False
    common[:, :margin] = common[:, -margin:] = False
    if not common.any():
        raise InputError(target_path, "no pixel is covered by every method")
    score_methods(methods, simulation.target, common)
    settings = {"degradation": degradation.to_dict(), "models": [str(m) for m in models],
                "baselines": list(baselines), "pixels_scored": int(common.sum()),
                "registration": None if registration is None else
                json.loads(registration.tags()["S2L8H_SCENE_SHIFT"]),
                "grid": {"crs": str(grid.crs), "transform": list(grid.affine)[:6],
                         "shape": list(grid.shape)}}
    return BenchmarkResult(simulation, methods, common, output_dir, settings)


@dataclass
class ConditionsResult:
    """One :class:`BenchmarkResult` per named condition."""

    results: dict[str, BenchmarkResult]
    output_dir: Path
    settings: dict[str, object]

    def summary_table(self) -> str:
        """PSNR (dB) per method and condition, and each model's margin over the best
        baseline."""
        names = list(self.results)
        methods = list(dict.fromkeys(m.name for result in self.results.values()
                                     for m in result.methods))
        lines = ["| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for method in methods:
            found = [self._method(name, method) for name in names]
            cells = [f"{m.metrics['overall']['psnr']:.2f}" if m else "–" for m in found]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        compared = dict.fromkeys(m.name for result in self.results.values()
                                 for m in result.methods if m.kind in ("model", "reference"))
        for method in compared:
            cells = []
            for name in names:
                best, found = self.best_baseline(name), self._method(name, method)
                if found is None:
                    cells.append("–")
                    continue
                gain = found.metrics["overall"]["psnr"] - best.metrics["overall"]["psnr"] \
                    if best else math.nan
                cells.append(f"{gain:+.2f} ({best.name if best else '–'})")
            lines.append(f"| **{method} − best baseline** | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def noise_gain_table(self) -> str:
        """Noise gain (:func:`s2l8h.evaluate.metrics.noise_gain`, mean over bands, and the
        largest band's in brackets) per method and noise-only condition; empty when there is
        none (it needs ``clean`` in the run)."""
        names = [name for name, result in self.results.items()
                 if any("noise_gain" in m.metrics.get("detail", {}) for m in result.methods)]
        if not names:
            return ""
        methods = list(dict.fromkeys(m.name for name in names
                                     for m in self.results[name].methods
                                     if "noise_gain" in m.metrics.get("detail", {})))
        lines = ["| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for method in methods:
            found = [self._method(name, method) for name in names]
            cells = [_gain_cell(m.metrics["detail"]) if m else "–" for m in found]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def _method(self, condition: str, name: str) -> MethodResult | None:
        return next((m for m in self.results[condition].methods if m.name == name), None)

    def best_baseline(self, condition: str) -> MethodResult | None:
        baselines = [m for m in self.results[condition].methods if m.kind == "baseline"]
        return max(baselines, key=lambda m: m.metrics["overall"]["psnr"], default=None)


def run_conditions(
    sentinel2: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    conditions: Sequence[str] | Mapping[str, Degradation],
    options: BenchmarkOptions | None = None,
    **changes: Any,
) -> ConditionsResult:
    """The benchmark under each named condition of
    :data:`s2l8h.data.simulate.CONDITIONS` (``all`` for every one), or under each
    :class:`Degradation` of a ``{name: degradation}`` mapping: one table per condition
    for every model and baseline of ``options`` (and/or its fields as keyword arguments, see
    :class:`BenchmarkOptions`), a summary table, ``results.{md,csv,json}`` and
    ``report.html`` in ``output_dir`` (each condition's files under ``output_dir/<name>``)."""
    options = BenchmarkOptions.build(options, **changes)
    if isinstance(conditions, Mapping):
        chosen = dict(conditions)
        bad = [name for name in chosen if name in ("", ".", "..") or Path(name).name != name]
        if bad:
            raise OptionError(f"condition names {bad} are not folder names")
    else:
        names = list(CONDITIONS) if list(conditions) == ["all"] else list(conditions)
        unknown = [name for name in names if name not in CONDITIONS]
        if unknown:
            raise OptionError(f"unknown conditions {unknown}; known: {', '.join(CONDITIONS)}")
        chosen = {name: CONDITIONS[name] for name in names}
    names = list(chosen)
    output_dir, reflectance, valid, grid = options.prepare(sentinel2, output_dir)
    results = {}
    for name, degradation in chosen.items():
        folder = output_dir / name
        folder.mkdir(exist_ok=True)
        results[name] = _run_condition(reflectance, valid, grid, degradation, folder, options)
        results[name].settings["condition"] = name
    _score_noise_gain(results, chosen)
    settings = {"sentinel2": str(sentinel2), "bounds": options.bounds,
                "offset": options.offset, "b08_as_b8a": options.b08_as_b8a,
                "conditions": names,
                "models": [str(m) for m in options.models],
                "baselines": list(options.baselines)}
    suite = ConditionsResult(results, output_dir, settings)
    _write_condition_tables(suite)
    if options.report:
        from s2l8h.evaluate.report import write_conditions_report

        write_conditions_report(suite, output_dir / "report.html")
    return suite


def _score_noise_gain(results: dict[str, BenchmarkResult],
                      degradations: Mapping[str, Degradation]) -> None:
    """Each method's noise gain (:func:`s2l8h.evaluate.metrics.noise_gain`, per band and
    mean) in every condition that departs from ``clean`` by its noise alone: the two
    simulations share the scene and the seed, so the difference of a method's outputs is its
    response to that noise and the difference of the inputs is the noise itself (brought to
    the 10 m grid by nearest neighbour). Only against a ``clean`` that is the clean
    simulation."""
    clean = results.get("clean")
    if clean is None or clean.simulation is None or degradations["clean"] != CONDITIONS["clean"]:
        return
    for name, result in results.items():
        degradation = degradations[name]
        if name == "clean" or result.simulation is None or degradation == CONDITIONS["clean"] \
                or replace(degradation, noise_scale=0.0, noise_std=0.0) != CONDITIONS["clean"]:
            continue
        simulation = result.simulation
        input_noise = warp(simulation.multispectral - clean.simulation.multispectral,
                           simulation.lowres_grid, simulation.target_grid, Resampling.nearest)
        flat = flat_pixels(clean.simulation.target, result.valid & clean.valid)
        for method in result.methods:
            before = next((m for m in clean.methods if m.name == method.name), None)
            if method.kind == "reference" or before is None:
                continue
            gains = noise_gain(method.prediction - before.prediction, input_noise, flat)
            method.metrics["detail"]["noise_gain"] = float(np.mean(gains))
            method.metrics["detail"].update(
                {f"noise_gain_{band}": gain for band, gain in zip(BANDS, gains, strict=True)})


def write_tables(result: BenchmarkResult, header: str | None = None) -> None:
    """``results.md`` (``header`` then the table), ``results.csv``, ``results.json``."""
    directory = result.output_dir
    rows = result.table_rows()
    header = header or (
        "Reduced-resolution benchmark (Landsat simulated from Sentinel-2; "
        f"{result.settings['pixels_scored']:,} pixels scored at 10 m; reflectance, data "
        "range 1).\n\n")
    _atomic_text(directory / "results.md", header + result.markdown_table() + "\n")
    write_csv(directory / "results.csv", rows)
    document = {"settings": result.settings,
                "methods": {m.name: {"kind": m.kind, "seconds": m.seconds, **m.metrics}
                            for m in result.methods}}
    write_json(directory / "results.json", document)


def _write_condition_tables(suite: ConditionsResult) -> None:
    directory = suite.output_dir
    parts = ["Reduced-resolution benchmark under named conditions (Landsat simulated from "
             "Sentinel-2 with the departures of `s2l8h.data.simulate.CONDITIONS`; reflectance, "
             "data range 1).", "", "## PSNR (dB) per condition", "", suite.summary_table(), ""]
    gains = suite.noise_gain_table()
    if gains:
        parts += ["## Noise gain (flat areas; output noise / input noise, 1 = as noisy as the "
                  "input; bands pooled, the largest band in brackets)", "", gains, ""]
    rows = []
    for name, result in suite.results.items():
        parts += [f"## {name}", "", f"{result.settings['pixels_scored']:,} pixels; "
                  f"degradation {json.dumps(result.settings['degradation'])}", "",
                  result.markdown_table(), ""]
        rows += [{"condition": name, **row} for row in result.table_rows()]
    _atomic_text(directory / "results.md", "\n".join(parts))
    write_csv(directory / "results.csv", rows)
    document = {"settings": suite.settings, "conditions": {
        name: {"settings": result.settings,
               "methods": {m.name: {"kind": m.kind, "seconds": m.seconds, **m.metrics}
                           for m in result.methods}}
        for name, result in suite.results.items()}}
    write_json(directory / "results.json", document)


def write_csv(path: str | os.PathLike[str], rows: list[dict[str, object]]) -> None:
    """``rows`` (dicts with the same keys, the header) as CSV at ``path``, written under a
    temporary name and renamed."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)


def write_json(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """``document`` as standard JSON (:func:`_finite_json`: a figure not measured is null) at
    ``path``, written under a temporary name and renamed (:func:`_atomic_text`)."""
    _atomic_text(Path(path), json.dumps(_finite_json(document), indent=2, allow_nan=False)
                 + "\n")


def _atomic_text(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
