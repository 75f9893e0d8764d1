"""An ensemble's σ calibration across conditions (s2l8h.evaluate.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from s2l8h.evaluate.calibration import (
    SIGMA_FACTORS,
    SigmaFit,
    coverage_curve,
    fit_band_factors,
    fit_sigma_calibration,
    fit_variance_scale,
)
from s2l8h.inference.uncertainty import SigmaCalibration


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


def test_a_noise_term_fits_what_one_factor_cannot() -> None:
    """Errors that grow with the input's noise while the networks' σ does not: one factor
    leaves the clean condition too wide or the noisy one too narrow; σ² = f · (v + t · n²)
    finds both, and f · t near the true weight of the noise (1)."""
    rng = np.random.default_rng(2)
    bands, pixels = 6, 40_000
    std = rng.uniform(0.004, 0.01, (bands, pixels))
    samples = {}
    for name, noise in (("clean", 0.0002), ("noisy", 0.008)):
        true_std = np.sqrt((std / 1.4) ** 2 + noise**2)  # σ 1.4x too wide, + the noise
        samples[name] = (rng.standard_normal(std.shape) * true_std, std**2, [noise] * bands)
    scale, noise_scale, coverage, level_scale, pan_scale = fit_sigma_calibration(samples)
    assert level_scale == 0.0 and pan_scale == 0.0  # no level or pan term given
    assert all(0.62 <= value <= 0.75 for value in coverage.values())
    assert np.sqrt(scale) == pytest.approx(1 / 1.4, abs=0.04)
    assert noise_scale == pytest.approx(1.0, abs=0.3)
    _, no_noise_term, plain, *_ = fit_sigma_calibration(samples, weights=(0.0,))
    assert no_noise_term == 0.0 and max(plain.values()) - min(plain.values()) > 0.3
    assert not all(0.60 <= value <= 0.80 for value in plain.values())
    # A condition whose input noise was not measured is an error naming it.
    samples["unmeasured"] = (samples["clean"][0], samples["clean"][1], [])
    with pytest.raises(ValueError, match="unmeasured: the input noise needs one value per band"):
        fit_sigma_calibration(samples)


def test_fit_sigma_calibration_weighs_the_level_term_on_its_own() -> None:
    """Gaussian errors of variance (v + 1.5 · L²) / 1.44 in three conditions with three levels
    L: the fit finds f near 1 / 1.44 and the level's weight u near 1.5, which neither the
    members' factor nor the noise term can replace."""
    rng = np.random.default_rng(3)
    bands, pixels = 6, 40_000
    std = rng.uniform(0.004, 0.01, (bands, pixels))
    samples = {}
    for name, level in (("clean", 0.0), ("small offset", 0.006), ("offset", 0.012)):
        true_std = np.sqrt((std**2 + 1.5 * level**2) / 1.44)
        samples[name] = (rng.standard_normal(std.shape) * true_std, std**2, [0.0002] * bands,
                         np.full((bands, 1), level**2))
    fit = fit_sigma_calibration(samples, weights=(0.0, 1.0),
                                level_weights=(0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0))
    assert all(0.64 <= value <= 0.72 for value in fit.coverage.values())
    assert np.sqrt(fit.variance_scale) == pytest.approx(1 / 1.2, abs=0.03)
    assert fit.level_variance_scale / fit.variance_scale == pytest.approx(1.5, abs=0.6)
    without = fit_sigma_calibration(samples, weights=(0.0, 1.0), level_weights=(0.0,))
    assert without.level_variance_scale == 0.0
    assert not all(0.60 <= value <= 0.80 for value in without.coverage.values())
    # A squared level a hair below 0 (a difference of two variances) counts as 0.
    samples["clean"] = (*samples["clean"][:3], np.full((bands, 1), -1e-12))
    assert fit_sigma_calibration(samples, weights=(0.0, 1.0),
                                 level_weights=(1.5,)).coverage["clean"] > 0.6


def test_fit_sigma_calibration_weighs_the_pan_term_per_pixel() -> None:
    """Errors that grow with a per-pixel disagreement R the networks' σ does not see (real
    data: R large; clean simulation: R small): σ² = f · (v + p · R²) fits both conditions and
    the pixels of high R within each, where one factor leaves the real condition too narrow."""
    rng = np.random.default_rng(4)
    bands, pixels = 6, 40_000
    std = rng.uniform(0.004, 0.01, (bands, pixels))
    samples = {}
    for name, typical in (("simulated", 0.0007), ("real", 0.002)):
        disagreement = rng.exponential(typical, (1, pixels))
        true_std = np.sqrt((std**2 + 4.0 * disagreement**2) / 1.44)
        samples[name] = (rng.standard_normal(std.shape) * true_std, std**2, [0.0002] * bands,
                         None, disagreement**2)
    fit = fit_sigma_calibration(samples, weights=(0.0,), pan_weights=(0.0, 1.0, 2.0, 4.0, 8.0))
    assert fit.level_variance_scale == 0.0  # no level term given
    assert fit.pan_variance_scale / fit.variance_scale == pytest.approx(4.0, abs=2.1)
    assert all(0.64 <= value <= 0.72 for value in fit.coverage.values())
    without = fit_sigma_calibration(samples, weights=(0.0,), pan_weights=(0.0,))
    assert without.pan_variance_scale == 0.0
    assert without.coverage["real"] < fit.coverage["real"] - 0.03
    # Within the real condition, the fitted term covers the pixels of high R as the others.
    error, variance, _, _, square = samples["real"]
    high = np.broadcast_to(square > np.quantile(square, 0.9), error.shape)
    with_term = np.sqrt(fit.variance_scale * variance + fit.pan_variance_scale * square)
    # The fit's own σ² (what scripts/calibrate_ensemble.py reports), no noise or level term.
    np.testing.assert_allclose(fit.total_variance(variance, [0.0002] * bands, np.zeros((1, 1)),
                                                  square), with_term**2, rtol=1e-12)
    planted = SigmaFit(0.5, 2.0, {}, 3.0, 4.0)
    np.testing.assert_allclose(
        planted.total_variance(np.full((2, 3), 1e-4), [0.01, 0.02], np.full((2, 1), 1e-4),
                               np.full((1, 3), -1e-9)),  # a hair below 0 counts as 0
        np.array([[5e-5 + 2e-4 + 3e-4] * 3, [5e-5 + 8e-4 + 3e-4] * 3]), rtol=1e-12)
    covered = np.abs(error) <= with_term
    assert abs(covered[high].mean() - covered[~high].mean()) < 0.06
    covered_without = np.abs(error) <= np.sqrt(without.variance_scale * variance)
    assert covered_without[high].mean() < covered_without[~high].mean() - 0.15


def test_sigma_calibration_noise_term() -> None:
    assert SigmaCalibration(0.5).noise_variance([0.01] * 6) is None
    assert SigmaCalibration(0.5, 2.0).noise_variance([]) is None
    added = SigmaCalibration(0.5, 2.0).noise_variance([0.001, 0.002, 0, 0, 0, 0.01])
    assert added.shape == (6, 1, 1)
    assert added[:, 0, 0] == pytest.approx([2e-6, 8e-6, 0, 0, 0, 2e-4])
    # The per-band factors multiply it too.
    banded = SigmaCalibration(0.5, 2.0, band_variance_factors=(0.5, 1, 1, 1, 1, 3.0))
    assert banded.noise_variance([0.001, 0.002, 0, 0, 0, 0.01])[:, 0, 0] == pytest.approx(
        [1e-6, 8e-6, 0, 0, 0, 6e-4])


def test_fit_band_factors_calibrates_each_band() -> None:
    """A σ too wide in one band and too narrow in another (as the pan term leaves blue and
    SWIR): one factor per band brings every band of both conditions to about 0.68, where the
    bands pooled already were."""
    rng = np.random.default_rng(5)
    bands, pixels = 6, 30_000
    too_wide = np.array([2.0, 1.0, 1.0, 1.0, 0.7, 1.3])  # the given σ over the errors' std
    samples = {}
    for name, level in (("clean", 0.003), ("realistic", 0.006)):
        std = rng.uniform(0.5, 1.5, (bands, pixels)) * level
        error = rng.standard_normal((bands, pixels)) * std
        samples[name] = (error, (too_wide[:, None] * std) ** 2)
    factors, coverage = fit_band_factors(samples)
    assert len(factors) == bands
    np.testing.assert_allclose(np.sqrt(factors), 1 / too_wide, rtol=0.05)
    for name, per_band in coverage.items():
        assert len(per_band) == bands
        assert all(0.65 <= value <= 0.72 for value in per_band), (name, per_band)
        error, variance = samples[name]
        given = [coverage_curve(error[band], np.sqrt(variance[band]), np.array([1.0]))[0]
                 for band in range(bands)]
        assert given[0] > 0.9 and given[4] < 0.55  # the fixture: what the factors correct
    with pytest.raises(ValueError, match="same bands"):
        fit_band_factors({"a": samples["clean"], "b": tuple(part[:3]
                                                           for part in samples["realistic"])})
    with pytest.raises(ValueError, match="differ in shape"):
        fit_band_factors({"a": (samples["clean"][0], samples["clean"][1][:, :10])})
    with pytest.raises(ValueError, match="no condition"):
        fit_band_factors({})
