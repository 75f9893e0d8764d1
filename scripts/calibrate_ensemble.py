"""Fit an ensemble's σ calibration (its ``variance_scale``) on validation data only.

Validation data: the validation rows of the training scene `data/s2_l1c_virginia_north`
(55-70 % of the rows from the top) under every named benchmark condition, and the validation
rows of the real Florida scene (55-72 %, Wald protocol). Prints each condition's coverage of
1σ at the fitted factor and the factor to register with the ensemble.

    python scripts/calibrate_ensemble.py lite2.real-wald3-a lite2.real-wald3-b
"""

from __future__ import annotations

import sys
import tempfile
import warnings

import numpy as np

from s2l8h.data.simulate import CONDITIONS
from s2l8h.evaluate.benchmark import BenchmarkOptions, run_conditions
from s2l8h.evaluate.calibration import SIGMA_FACTORS, coverage_curve, fit_variance_scale
from s2l8h.evaluate.wald import run_wald

VIRGINIA_VALIDATION = (435730, 4172460, 450730, 4173960)
FLORIDA_VALIDATION = (452475, 3395595, 471285, 3398685)


def main(members: list[str]) -> None:
    entry = "+".join(members)  # members by name: the variance is not scaled yet
    curves: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = BenchmarkOptions(models=(entry,), baselines=(), bounds=VIRGINIA_VALIDATION,
                                   report=False)
        suite = run_conditions("data/s2_l1c_virginia_north", f"{folder}/sim", list(CONDITIONS),
                               options)
        for name, result in suite.results.items():
            method = result.methods[0]
            reference = result.simulation.target
            curves[name] = coverage_curve((method.prediction - reference)[:, result.valid],
                                          method.std[:, result.valid])
        real = run_wald("data/l8_l1t_florida_20150804", f"{folder}/real", models=[entry],
                        baselines=[], toa=True, bounds=FLORIDA_VALIDATION, report=False)
        method = real.methods[0]
        curves["real Florida (Wald)"] = coverage_curve(
            (method.prediction - real.reference)[:, real.valid], method.std[:, real.valid])
    scale, coverage = fit_variance_scale(curves)
    unscaled = list(SIGMA_FACTORS).index(1.0)
    for name, value in coverage.items():
        print(f"{name:22s} cov68 {value:.3f}  (unscaled {curves[name][unscaled]:.3f})")
    print(f"variance_scale {scale:.4f} (σ x {np.sqrt(scale):.2f})")


if __name__ == "__main__":
    main(sys.argv[1:])
