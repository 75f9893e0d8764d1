"""Real Landsat, reduced-resolution protocol (Wald et al. 1997, "Fusion of satellite images
of different spatial resolutions: assessing the quality of resulting images", Photogramm.
Eng. Remote Sens. 63(6), 691-699).

No same-day Sentinel-2 image is needed: the real 30 m bands and 15 m pan of a Landsat scene
are degraded 3 x (the Gaussian PSF with modulation 0.3 at the new Nyquist frequency, then the
exact 3 x 3 area average: 90 m bands, 45 m pan), every method turns them into "10 m" (here
30 m) images, and these are scored against the real 30 m bands. Predictions are brought back
to OLI radiometry (the HLS bandpass adjustment MSI -> OLI, S2A) so that they compare with the
real bands; baselines go through the same inverse. Pixels flagged by the quality band
(cloud, shadow, fill by default) or without data in any band are left out, with a margin of
one degraded pixel at the image edge.

This assumes the methods behave alike at 3 x coarser scales (the protocol's usual caveat);
it measures how well real Landsat detail, noise, registration and radiometry are handled,
which simulations from Sentinel-2 cannot.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from s2l8h.bandpass import HLS_BANDPASS, msi_to_oli
from s2l8h.data.real import FACTOR, read_real_scene, reduce_scene
from s2l8h.evaluate.baselines import BASELINES, run_baseline
from s2l8h.evaluate.benchmark import (
    BenchmarkResult,
    MethodResult,
    _prepare_output,
    score_methods,
    write_tables,
)
from s2l8h.inference.checks import scene_noise
from s2l8h.inference.harmonize import (
    build_predictor,
    level_shift_summary,
    noise_variance,
    resolve_models,
)
from s2l8h.io.errors import InputError
from s2l8h.io.quality import DEFAULT_MASK_FLAGS
from s2l8h.models.harmonizer import Harmonizer


@torch.no_grad()
def _predict(models: list[Harmonizer], uncertainty: str, multispectral: np.ndarray,
             pan: np.ndarray, noise: list[float], consistency: bool = True,
             filter_input_noise: bool = True
             ) -> tuple[np.ndarray, np.ndarray | None, dict[str, object] | None]:
    """The mean and the σ in OLI radiometry (the MSI σ times the HLS slope, plus a registered
    ensemble's term for the input's estimated noise per band ``noise``, which is measured in
    OLI radiometry) of ``models`` on one scene, and how far the networks would move the
    input's band levels (:func:`~s2l8h.inference.harmonize.level_shift_summary`; one tile: the
    whole scene)."""
    predictor = build_predictor(models, uncertainty, consistency=consistency,
                                filter_input_noise=filter_input_noise)
    mean, variance = predictor(torch.from_numpy(multispectral)[None],
                               torch.from_numpy(pan)[None])
    levels = level_shift_summary(predictor)
    if variance is None:
        return mean[0].numpy(), None, levels
    slope = np.array([a for a, _ in HLS_BANDPASS["S2A"]])[:, None, None]
    variance = np.maximum(variance[0].numpy(), 0) * slope**2
    added = noise_variance(predictor, noise)
    if added is not None:
        variance = variance + added
    return mean[0].numpy(), np.sqrt(variance).astype(np.float32), levels


def run_wald(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    models: Sequence[str | os.PathLike[str]] = (),
    baselines: Sequence[str] = BASELINES,
    toa: bool = False,
    bounds: tuple[float, float, float, float] | None = None,
    mask_flags: tuple[str, ...] = DEFAULT_MASK_FLAGS,
    uncertainty: str = "auto",
    consistency: bool = True,
    filter_input_noise: bool = True,
    overwrite: bool = False,
    report: bool = True,
) -> BenchmarkResult:
    """Score ``models`` (names or paths; ``a+b`` an ensemble) and ``baselines`` on a real
    Landsat scene by the reduced-resolution protocol (module docstring); write
    ``results.{md,csv,json}`` and ``report.html`` into ``output_dir``. ``consistency`` and
    ``filter_input_noise``: as in ``harmonize`` (:mod:`s2l8h.inference.consistency`,
    :mod:`s2l8h.inference.denoise`)."""
    output_dir = _prepare_output(output_dir, baselines, overwrite)
    loaded = {str(entry): resolve_models(str(entry).split("+")) for entry in models}
    convention = next(iter(loaded.values()))[0].convention if loaded else None
    real = read_real_scene(inputs, toa=toa, convention=convention, mask_flags=mask_flags,
                           bounds=bounds)
    scene, bands30, valid30, grid30, grid15 = real.scene, real.bands, real.has_data, \
        real.grid30, real.grid15
    bands90, pan45, valid90 = reduce_scene(real)
    output_dir.mkdir(parents=True, exist_ok=True)  # once the inputs have been read
    grid90 = grid30.zoom_out(FACTOR).crop(bands90.shape[1:])
    grid45 = grid15.zoom_out(FACTOR).crop(pan45.shape[1:])
    noise = scene_noise(bands90, valid90)  # as harmonize measures it
    methods: list[MethodResult] = []
    for name in baselines:
        started = time.perf_counter()
        fused = run_baseline(name, np.where(valid90, bands90, np.nan), grid90,
                             pan45[0], grid45, grid30, pan_sun_sine=real.sun_sine)
        methods.append(MethodResult(name, "baseline", time.perf_counter() - started,
                                    msi_to_oli(fused)))
    for entry, members in loaded.items():
        label = " + ".join(Path(member).name or member for member in entry.split("+"))
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean, std, levels = _predict(members, uncertainty,
                                         np.where(valid90, bands90, 0).astype(np.float32),
                                         pan45.astype(np.float32), noise, consistency,
                                         filter_input_noise)
        methods.append(MethodResult(label, "model", time.perf_counter() - started,
                                    msi_to_oli(mean), std, input_noise=noise,
                                    level_shift=levels))
    common = real.scored & np.kron(valid90, np.ones((FACTOR, FACTOR), dtype=bool))
    for method in methods:
        common &= np.isfinite(method.prediction).all(axis=0)
    common[:FACTOR] = common[-FACTOR:] = False
    common[:, :FACTOR] = common[:, -FACTOR:] = False
    if not common.any():
        raise InputError(scene.multispectral[0], "no pixel is covered by every method")
    reference = np.where(valid30, bands30, np.nan).astype(np.float32)
    score_methods(methods, reference, common)
    settings = {"protocol": "reduced resolution (Wald), real Landsat", "scene": scene.name,
                "level": scene.level, "radiometry": "OLI surface reflectance"
                if scene.level == "L2" else "OLI TOA reflectance (TOA mode)",
                "inputs": str(inputs), "bounds": bounds, "models": list(loaded),
                "baselines": list(baselines), "pixels_scored": int(common.sum()),
                "grid": {"crs": str(grid30.crs), "transform": list(grid30.affine)[:6],
                         "shape": list(grid30.shape)}}
    result = BenchmarkResult(None, methods, common, output_dir, settings, reference)
    write_tables(result, header=(
        f"Real Landsat, reduced-resolution protocol (Wald): scene {scene.name} "
        f"({settings['radiometry']}); bands degraded 90 m / pan 45 m, predictions at 30 m "
        f"scored against the real 30 m bands in OLI radiometry; "
        f"{int(common.sum()):,} pixels.\n\n"))
    if report:
        from s2l8h.evaluate.report import write_report

        write_report(result, output_dir / "report.html")
    return result
