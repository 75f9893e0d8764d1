"""An ensemble's σ calibration across conditions (s2l8h.evaluate.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from s2l8h.evaluate.calibration import SIGMA_FACTORS, coverage_curve, fit_variance_scale


def test_coverage_curve_of_gaussian_errors() -> None:
    rng = np.random.default_rng(0)
    std = rng.uniform(0.001, 0.01, 200_000)
    error = rng.standard_normal(std.size) * std
    curve = coverage_curve(error, std)
    at = {round(float(f), 2): value for f, value in zip(SIGMA_FACTORS, curve, strict=True)}
    assert at[1.0] == pytest.approx(0.6827, abs=0.005)
    assert np.all(np.diff(curve) >= 0)
    # σ twice too wide: the 68 % factor is 0.5
    assert coverage_curve(error, 2 * std)[list(SIGMA_FACTORS).index(0.5)] == \
        pytest.approx(0.6827, abs=0.005)
    with pytest.raises(ValueError, match="no finite"):
        coverage_curve(np.array([np.nan]), np.array([1.0]))


def test_one_factor_fits_two_conditions_into_the_band() -> None:
    rng = np.random.default_rng(1)
    std = np.full(100_000, 0.01)
    # one condition's σ is 1.3x too wide, the other's 1.05x too narrow
    wide = coverage_curve(rng.standard_normal(std.size) * std / 1.3, std)
    narrow = coverage_curve(rng.standard_normal(std.size) * std * 1.05, std)
    scale, coverage = fit_variance_scale({"wide": wide, "narrow": narrow})
    assert 0.60 <= coverage["narrow"] <= 0.80 and 0.60 <= coverage["wide"] <= 0.80
    assert 0.88 < np.sqrt(scale) < 1.0  # σ shrinks, by what the two allow
    # an impossible pair: the worst excursion is shared, not put on one condition
    far = coverage_curve(rng.standard_normal(std.size) * std / 3.0, std)
    _, coverage = fit_variance_scale({"far": far, "narrow": narrow})
    assert abs((coverage["far"] - 0.80) - (0.60 - coverage["narrow"])) < 0.03
