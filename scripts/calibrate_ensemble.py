"""Fit an ensemble's σ calibration on validation data only.

Validation data: the validation rows of the training scene `data/s2_l1c_virginia_north`
(55-70 % of the rows from the top) under every named benchmark condition, and the validation
rows of the real Florida scene (55-72 %, Wald protocol). Fits σ² = f · (v + u · L_b² + t · n_b²),
v the members' combined variance, L_b the level departure from the input that the consistency
step measures (per tile and band, :func:`s2l8h.inference.consistency.level_departure`),
u its weight, and n_b the input's estimated noise per band
(:func:`s2l8h.evaluate.calibration.fit_sigma_calibration`), and prints each condition's
coverage of 1σ with it, without the noise term (t = 0, f and u refitted) and unscaled
(v + L²), each condition's PSNR (the ensemble's mean), and the three factors to register with
the ensemble (``variance_scale`` f, ``noise_variance_scale`` f · t and
``level_variance_scale`` f · u). The members must be registered releases (the script
registers them as temporary ensembles: one with the level term at weight 1, one without, so
that L² is their variances' difference).

    python scripts/calibrate_ensemble.py lite2.real-wald5-a lite2.real-wald5-b \
        --views identity,rot180
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings

import numpy as np

from s2l8h.data.simulate import CONDITIONS
from s2l8h.evaluate.benchmark import BenchmarkOptions, run_conditions
from s2l8h.evaluate.calibration import fit_sigma_calibration
from s2l8h.evaluate.wald import run_wald
from s2l8h.models.registry import is_registered, list_ensembles, register_ensemble

VIRGINIA_VALIDATION = (435730, 4172460, 450730, 4173960)
FLORIDA_VALIDATION = (452475, 3395595, 471285, 3398685)
#: The weights u on the squared level departure searched.
LEVEL_WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)


def main(members: list[str], views: tuple[str, ...] = ()) -> None:
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
    # The members as two ensembles with nothing scaled yet, one with the level term of the
    # consistency step at weight 1 and one without: the fit then gives
    # σ² = f · (v + u · L² + t · n²), L² the difference of their variances.
    with_level, without_level = "calibrating", "calibrating-no-level"
    try:
        register_ensemble(with_level, tuple(members), level_variance_scale=1.0,
                          member_views=views)
        register_ensemble(without_level, tuple(members), member_views=views)
    except ValueError as error:
        sys.exit(str(error))
    samples: dict[str, tuple[np.ndarray, ...]] = {}

    def add(name: str, methods, reference: np.ndarray, valid: np.ndarray) -> None:
        by_name = {method.name: method for method in methods}
        level, plain = by_name[with_level], by_name[without_level]
        variance = plain.std[:, valid] ** 2
        samples[name] = ((plain.prediction - reference)[:, valid], variance,
                         plain.input_noise, level.std[:, valid] ** 2 - variance)

    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = BenchmarkOptions(models=(with_level, without_level), baselines=(),
                                   bounds=VIRGINIA_VALIDATION, report=False)
        suite = run_conditions("data/s2_l1c_virginia_north", f"{folder}/sim", list(CONDITIONS),
                               options)
        for name, result in suite.results.items():
            add(name, result.methods, result.simulation.target, result.valid)
        real = run_wald("data/l8_l1t_florida_20150804", f"{folder}/real",
                        models=[with_level, without_level], baselines=[], toa=True,
                        bounds=FLORIDA_VALIDATION, report=False)
        add("real Florida (Wald)", real.methods, real.reference, real.valid)
    fit = fit_sigma_calibration(samples, level_weights=LEVEL_WEIGHTS)
    plain = fit_sigma_calibration(samples, weights=(0.0,), level_weights=LEVEL_WEIGHTS)
    unscaled = fit_sigma_calibration(samples, factors=np.array([1.0]), weights=(0.0,))
    print(f"{'condition':22s} PSNR dB | cov68 fitted | noise term off (f "
          f"{plain.variance_scale:.4f}, g {plain.level_variance_scale:.4f}) | "
          "unscaled (v + L²)")
    for name, value in fit.coverage.items():
        psnr = -10 * np.log10(np.mean(np.square(samples[name][0])))
        print(f"{name:22s} {psnr:.2f} | {value:.3f} | {plain.coverage[name]:.3f} | "
              f"{unscaled.coverage[name]:.3f}")
    print(f"variance_scale {fit.variance_scale:.4f} (σ x {np.sqrt(fit.variance_scale):.2f}), "
          f"noise_variance_scale {fit.noise_variance_scale:.4f}, "
          f"level_variance_scale {fit.level_variance_scale:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+", help="registered releases")
    parser.add_argument("--views", default="", help="the view each member sees, comma-"
                        "separated (s2l8h.models.views; default: all identity)")
    arguments = parser.parse_args()
    main(arguments.members, tuple(view for view in arguments.views.split(",") if view))
