"""Fit an ensemble's σ calibration on validation data only.

Validation data: the validation rows of the training scene `data/s2_l1c_virginia_north`
(55-70 % of the rows from the top) under every named benchmark condition, and the validation
rows of the real Florida scene (55-72 %, Wald protocol). Fits σ² = f · (v + u · L_b² + t · n_b²
+ p · R²), v the members' combined variance, L_b the level departure from the input that the
consistency step measures (per tile and band, :func:`s2l8h.inference.consistency.level_departure`),
n_b the input's estimated noise per band and R the pan's disagreement with the bands per pixel
(:func:`s2l8h.inference.consistency.pan_disagreement`), u, t and p their weights
(:func:`s2l8h.evaluate.calibration.fit_sigma_calibration`, searched on 50,000 pixels drawn
from each condition). Prints each condition's PSNR (the ensemble's mean) and coverage of 1σ
over all its pixels with the fit, without the pan term (p = 0, the rest refitted) and unscaled
(v + L²), and the four factors to register with the ensemble (``variance_scale`` f,
``noise_variance_scale`` f · t, ``level_variance_scale`` f · u and ``pan_variance_scale``
f · p). Then fits a factor per band on that σ² (``band_variance_factors``,
:func:`s2l8h.evaluate.calibration.fit_band_factors`, on the same drawn pixels of every
condition but those with per-band offsets and gains, ``atmosphere`` and ``realistic``, whose
bands' coverage follows the signs of those fixed offsets) and prints each condition's coverage
per band without and with them. The members must be registered releases (the script registers
them as temporary ensembles: one with the level term at weight 1, one with the pan term at
weight 1, one with neither, so that L² and R² are variances' differences).

    python scripts/calibrate_ensemble.py lite2.real-wald5-a lite2.real-wald5-b \
        --views identity,rot180

``--extra FOLDER=left,bottom,right,top`` (repeatable) adds the validation rows of a further
Sentinel-2 scene under :data:`EXTRA_CONDITIONS`, e.g. the Level-2A Zurich scene's
(``data/s2_l2a_zurich_20190530=472480,5249860,483500,5251480``), so that σ is also fitted on
surface-reflectance input.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings

import numpy as np

from s2l8h.bands import SENTINEL2_BANDS
from s2l8h.data.simulate import CONDITIONS
from s2l8h.evaluate.benchmark import BenchmarkOptions, run_conditions
from s2l8h.evaluate.calibration import (
    SigmaFit,
    coverage_curve,
    fit_band_factors,
    fit_sigma_calibration,
)
from s2l8h.evaluate.wald import run_wald
from s2l8h.models.registry import is_registered, list_ensembles, register_ensemble

VIRGINIA_VALIDATION = (435730, 4172460, 450730, 4173960)
FLORIDA_VALIDATION = (452475, 3395595, 471285, 3398685)
#: The weights u on the squared level departure searched.
LEVEL_WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
#: The weights p on the squared pan disagreement searched.
PAN_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: Pixels (each with its six bands) drawn from each condition for the search.
FIT_PIXELS = 50_000
#: The conditions run on each ``--extra`` scene's validation rows.
EXTRA_CONDITIONS = ("clean", "noise-oli", "psf-blurrier", "realistic")


def main(members: list[str], views: tuple[str, ...] = (),
         extra: tuple[tuple[str, tuple[float, ...]], ...] = ()) -> None:
    ensembles = {ensemble.name for ensemble in list_ensembles()}
    calibrated = [name for name in members if name in ensembles]
    if calibrated:
        sys.exit(f"{', '.join(calibrated)}: an ensemble, whose σ is calibrated already; "
                 "give its members")
    if len(members) < 2:
        sys.exit("give an ensemble's members: two or more registered releases")
    unknown = [name for name in members if not is_registered(name)]
    if unknown:
        sys.exit(f"{', '.join(unknown)}: not a registered release; register it first")
    # The members as three ensembles with nothing scaled yet: one with the level term of the
    # consistency step at weight 1, one with the pan term at weight 1 and one with neither;
    # the fit then gives σ² = f · (v + u · L² + t · n² + p · R²), L² and R² the differences
    # of their variances.
    with_level, with_pan, plain = "calibrating", "calibrating-pan", "calibrating-plain"
    try:
        register_ensemble(with_level, tuple(members), level_variance_scale=1.0,
                          member_views=views)
        register_ensemble(with_pan, tuple(members), pan_variance_scale=1.0, member_views=views)
        register_ensemble(plain, tuple(members), member_views=views)
    except ValueError as error:
        sys.exit(str(error))
    samples: dict[str, tuple[np.ndarray, ...]] = {}

    def add(name: str, methods, reference: np.ndarray, valid: np.ndarray) -> None:
        by_name = {method.name: method for method in methods}
        variance = by_name[plain].std[:, valid] ** 2
        samples[name] = ((by_name[plain].prediction - reference)[:, valid], variance,
                         by_name[plain].input_noise,
                         by_name[with_level].std[:, valid] ** 2 - variance,
                         by_name[with_pan].std[:, valid] ** 2 - variance)

    models = (with_level, with_pan, plain)

    def simulated(path: str, bounds: tuple[float, ...], conditions: list[str], out: str,
                  prefix: str = "") -> None:
        options = BenchmarkOptions(models=models, baselines=(), bounds=bounds, report=False)
        for name, result in run_conditions(path, out, conditions, options).results.items():
            add(prefix + name, result.methods, result.simulation.target, result.valid)

    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        simulated("data/s2_l1c_virginia_north", VIRGINIA_VALIDATION, list(CONDITIONS),
                  f"{folder}/sim")
        real = run_wald("data/l8_l1t_florida_20150804", f"{folder}/real", models=list(models),
                        baselines=[], toa=True, bounds=FLORIDA_VALIDATION, report=False)
        add("real Florida (Wald)", real.methods, real.reference, real.valid)
        for index, (path, bounds) in enumerate(extra):
            simulated(path, bounds, list(EXTRA_CONDITIONS), f"{folder}/extra{index}",
                      f"{_label(path)}: ")
    drawn = {name: _draw(sample, FIT_PIXELS) for name, sample in samples.items()}
    fit = fit_sigma_calibration(drawn, level_weights=LEVEL_WEIGHTS, pan_weights=PAN_WEIGHTS)
    no_pan = fit_sigma_calibration(drawn, level_weights=LEVEL_WEIGHTS, pan_weights=(0.0,))
    print(f"{'condition':22s} PSNR dB | cov68 fitted | pan term off (f "
          f"{no_pan.variance_scale:.4f}, g {no_pan.level_variance_scale:.4f}, h "
          f"{no_pan.noise_variance_scale:.4f}) | unscaled (v + L²)")
    for name, (error, variance, noise, level, pan) in samples.items():
        psnr = -10 * np.log10(np.mean(np.square(error)))
        terms = (variance, noise, level, pan)
        print(f"{name:22s} {psnr:.2f} | {_coverage(error, fit, *terms):.3f} | "
              f"{_coverage(error, no_pan, *terms):.3f} | {_coverage(error, None, *terms):.3f}")
    print(f"variance_scale {fit.variance_scale:.4f} (σ x {np.sqrt(fit.variance_scale):.2f}), "
          f"noise_variance_scale {fit.noise_variance_scale:.4f}, "
          f"level_variance_scale {fit.level_variance_scale:.4f}, "
          f"pan_variance_scale {fit.pan_variance_scale:.4f}")
    # Then a factor per band on the whole, fitted on the same drawn pixels of the conditions
    # without per-band offsets or gains (their bands' coverage follows the offsets' signs).
    band_factors, _ = fit_band_factors({name: (sample[0], fit.total_variance(*sample[1:]))
                                        for name, sample in drawn.items()
                                        if not _offsets_bands(name)})
    scaled = np.asarray(band_factors)[:, None]
    print(f"cov68 per band ({' '.join(SENTINEL2_BANDS)}), all pixels: common fit -> with the "
          "band factors | pooled with them (* not in the band factors' fit)")
    for name, (error, *terms) in samples.items():
        total = fit.total_variance(*terms)
        before = [_covered(error[band], total[band]) for band in range(len(error))]
        after = [_covered(error[band], scaled[band] * total[band]) for band in range(len(error))]
        print(f"{name + ' *' * _offsets_bands(name):22s} "
              f"{' '.join(f'{value:.3f}' for value in before)} -> "
              f"{' '.join(f'{value:.3f}' for value in after)} | "
              f"{_covered(error, scaled * total):.3f}")
    print("band_variance_factors " + ", ".join(f"{value:.4f}" for value in band_factors))


def _label(path: str) -> str:
    """The name an ``--extra`` scene's conditions carry: its folder's name."""
    return path.rstrip("/").split("/")[-1]


def _offsets_bands(name: str) -> bool:
    """Whether condition ``name`` moves bands by per-band offsets or gains (``atmosphere``,
    ``realistic``): fixed values, whose signs decide each band's coverage there."""
    condition = CONDITIONS.get(name.split(": ")[-1])
    return condition is not None and (any(condition.offset)
                                      or any(gain != 1 for gain in condition.gain))


def _draw(sample: tuple[np.ndarray, ...], count: int) -> tuple[np.ndarray, ...]:
    """``count`` pixels of a sample (error, v, n, L², R²) drawn without replacement (seed 0);
    all of them where it has fewer."""
    error, variance, noise, level, pan = sample
    if error.shape[1] <= count:
        return sample
    keep = np.sort(np.random.default_rng(0).choice(error.shape[1], count, replace=False))
    return error[:, keep], variance[:, keep], noise, level[:, keep], pan[:, keep]


def _covered(error: np.ndarray, variance: np.ndarray) -> float:
    """Fraction of ``error`` within 1σ, σ² = ``variance``."""
    return float(coverage_curve(error, np.sqrt(variance), np.array([1.0]))[0])


def _coverage(error: np.ndarray, fit: SigmaFit | None, variance: np.ndarray,
              noise: np.ndarray, level: np.ndarray, pan: np.ndarray) -> float:
    """Fraction of all of a condition's errors within 1σ under ``fit``; with ``None``,
    σ² = v + L² unscaled."""
    if fit is None:
        return _covered(error, variance + np.maximum(level, 0))
    return _covered(error, fit.total_variance(variance, noise, level, pan))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+", help="registered releases")
    parser.add_argument("--views", default="", help="the view each member sees, comma-"
                        "separated (s2l8h.models.views; default: all identity)")
    parser.add_argument("--extra", action="append", default=[], metavar="FOLDER=BOUNDS",
                        help="a further Sentinel-2 scene's validation rows (left,bottom,right,"
                        "top), run under " + ", ".join(EXTRA_CONDITIONS))
    arguments = parser.parse_args()
    extras = []
    for item in arguments.extra:
        folder_path, _, bounds = item.partition("=")
        try:
            values = tuple(float(value) for value in bounds.split(","))
        except ValueError:
            values = ()
        if len(values) != 4:
            parser.error(f"--extra {item!r}: give FOLDER=left,bottom,right,top")
        if any(_label(path) == _label(folder_path) for path, _ in extras):
            parser.error(f"--extra {item!r}: a scene of that folder name is given already")
        extras.append((folder_path, values))
    main(arguments.members, tuple(view for view in arguments.views.split(",") if view),
         tuple(extras))
