"""Calibrating an ensemble's σ across conditions: one factor on the variance, chosen on
validation data so that the fraction of errors within 1σ stays inside a band (0.60-0.80 by
default, the target 0.683) in every condition at once.

A single factor cannot make every condition exact: the networks' σ carries a floor for the
departures they cannot see (offsets, misregistration), which is too wide where there are
none. :func:`fit_variance_scale` therefore minimises the worst excursion outside the band
over all conditions, and among equally good factors the mean distance from the target.

:func:`fit_sigma_calibration` adds a term for the input's own noise, σ² = f · (v + t · n_b²)
with n_b the input scene's estimated noise σ per band (what ``harmonize`` measures): the
networks' σ grows too little with noisy input and with real Landsat, whose pixel-scale
texture and noise the simulations lack; the scene's noise estimate sees both. With
``level_weights`` it also weighs the square of the networks' level departure from the input
(:func:`s2l8h.inference.consistency.level_departure`) on its own, and with ``pan_weights``
the square of the pan's disagreement with the bands
(:func:`s2l8h.inference.consistency.pan_disagreement`): σ² = f · (v + u · L_b² + t · n_b² +
p · R²). :func:`fit_band_factors` then fits a factor per band on the whole, so that each band's
σ is calibrated on its own: a factor common to all bands leaves the bands the pan explains
(blue) with a σ too wide and those it does not (NIR, SWIR) with one too narrow.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

#: |e| <= this · σ is the central 68.27 % interval of a Gaussian.
ONE_SIGMA = 0.994
#: The factors on σ (not σ²) searched.
SIGMA_FACTORS = np.round(np.arange(0.30, 1.501, 0.01), 2)
#: The weights t on the input's noise variance searched by :func:`fit_sigma_calibration`.
NOISE_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)


def coverage_curve(error: np.ndarray, std: np.ndarray,
                   factors: np.ndarray = SIGMA_FACTORS) -> np.ndarray:
    """Fraction of ``|error| <= ONE_SIGMA · factor · std`` for each factor (any shapes,
    finite values only)."""
    ratio = np.abs(error) / np.maximum(std, 1e-12)
    ratio = np.sort(ratio[np.isfinite(ratio)].ravel())
    if ratio.size == 0:
        raise ValueError("no finite error/σ pair")
    return np.searchsorted(ratio, ONE_SIGMA * np.asarray(factors), side="right") / ratio.size


def _choose(table: np.ndarray, low: float, high: float, target: float) -> tuple[int, float,
                                                                            float]:
    """Column of ``table`` (conditions x factors) with the smallest worst excursion outside
    ``[low, high]`` (rounded to 1e-4), ties broken by the mean distance from ``target``; and
    those two figures."""
    excursion = np.maximum(low - table, 0) + np.maximum(table - high, 0)
    worst = np.round(excursion.max(axis=0), 4)
    spread = np.abs(table - target).mean(axis=0)
    best = int(np.lexsort((spread, worst))[0])
    return best, float(worst[best]), float(spread[best])


def fit_variance_scale(curves: Mapping[str, np.ndarray], low: float = 0.60,
                       high: float = 0.80, target: float = 0.6827,
                       factors: np.ndarray = SIGMA_FACTORS) -> tuple[float, dict[str, float]]:
    """The factor on the variance (the square of the chosen σ factor) whose worst coverage
    excursion outside ``[low, high]`` over ``curves`` (condition -> :func:`coverage_curve`)
    is smallest, ties broken by the mean distance from ``target``; and each condition's
    coverage at it."""
    table = np.stack([np.asarray(curve) for curve in curves.values()])
    best, _, _ = _choose(table, low, high, target)
    factor = float(factors[best])
    return factor**2, {name: float(table[row, best]) for row, name in enumerate(curves)}


class SigmaFit(NamedTuple):
    """A fitted σ calibration σ² = f · v + g · L_b² + h · n_b² + k · R² and the 1σ coverage
    it gives each condition."""

    variance_scale: float  # f
    noise_variance_scale: float  # h
    coverage: dict[str, float]
    level_variance_scale: float  # g
    pan_variance_scale: float = 0.0  # k

    def total_variance(self, variance: np.ndarray, noise: Sequence[float],
                       level: np.ndarray, pan: np.ndarray) -> np.ndarray:
        """σ² (bands, N) from the unscaled variance v (bands, N), the input noise n per band,
        L² (bands, N or 1) and R² (1 or bands, N), as :func:`fit_sigma_calibration` takes
        them (negative L² or R², a hair below 0 as differences of variances, count as 0)."""
        noise_variance = np.square(np.asarray(noise, dtype=np.float64))[:, None]
        return (self.variance_scale * variance + self.noise_variance_scale * noise_variance
                + self.level_variance_scale * np.maximum(level, 0)
                + self.pan_variance_scale * np.maximum(pan, 0))


def fit_sigma_calibration(
    samples: Mapping[str, tuple[np.ndarray, ...]],
    low: float = 0.60, high: float = 0.80, target: float = 0.6827,
    factors: np.ndarray = SIGMA_FACTORS, weights: Sequence[float] = NOISE_WEIGHTS,
    level_weights: Sequence[float] = (1.0,), pan_weights: Sequence[float] = (1.0,),
) -> SigmaFit:
    """The σ calibration σ² = f · (v + u · L_b² + t · n_b² + p · R²) chosen over factors,
    ``weights`` t, ``level_weights`` u and ``pan_weights`` p as :func:`fit_variance_scale`
    chooses f. ``samples``: condition -> (error (bands, N), unscaled variance v (bands, N),
    the input's estimated noise n (bands,)[, the squared level departure L² (bands, N) or
    (bands, 1)[, the squared pan disagreement R² (1 or bands, N)]]), reflectance; a sample
    without L² or R² (or with ``None``) has no such term, and with none at all the returned
    f · u or f · p is 0. Returns f, f · t, the coverage per condition, f · u and f · p."""
    noises: dict[str, np.ndarray] = {}
    extra: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {})
    for name, (_, variance, noise, *terms) in samples.items():
        if noise is None or len(noise) != variance.shape[0]:
            raise ValueError(f"{name}: the input noise needs one value per band "
                             f"({variance.shape[0]}), got {noise!r}")
        noises[name] = np.square(np.asarray(noise, dtype=np.float64))[:, None]
        for found, term in zip(extra, terms, strict=False):
            if term is not None:
                # A difference of two variances (the calibration script) can be a hair below 0.
                found[name] = np.maximum(np.asarray(term, dtype=np.float64), 0.0)
    levels, pans = extra
    level_weights = level_weights if levels else (0.0,)
    pan_weights = pan_weights if pans else (0.0,)
    chosen: tuple[float, float, float, float, float, float, np.ndarray] | None = None
    for level_weight, pan_weight, weight in itertools.product(level_weights, pan_weights,
                                                              weights):
        table = np.stack([
            coverage_curve(error, np.sqrt(variance + level_weight * levels.get(name, 0.0)
                                          + pan_weight * pans.get(name, 0.0)
                                          + weight * noises[name]), factors)
            for name, (error, variance, *_) in samples.items()])
        best, worst, spread = _choose(table, low, high, target)
        if chosen is None or (worst, spread) < (chosen[0], chosen[1]):
            chosen = (worst, spread, float(factors[best]) ** 2, float(weight),
                      float(level_weight), float(pan_weight), table[:, best])
    assert chosen is not None, "no weight to search"
    _, _, scale, weight, level_weight, pan_weight, coverage = chosen
    return SigmaFit(scale, scale * weight,
                    {name: float(value) for name, value in zip(samples, coverage, strict=True)},
                    scale * level_weight, scale * pan_weight)


def fit_band_factors(samples: Mapping[str, tuple[np.ndarray, np.ndarray]], low: float = 0.60,
                     high: float = 0.80, target: float = 0.6827,
                     factors: np.ndarray = SIGMA_FACTORS
                     ) -> tuple[tuple[float, ...], dict[str, list[float]]]:
    """A factor per band on a calibrated variance, each chosen as :func:`fit_variance_scale`
    chooses one over the conditions' coverage in that band alone, so that σ is calibrated per
    band and not only over the bands pooled. ``samples``: condition -> (error (bands, N),
    calibrated variance (bands, N)), reflectance. Returns the factors and each condition's
    coverage per band at them."""
    if not samples:
        raise ValueError("no condition to fit on")
    for name, (error, variance) in samples.items():
        if error.shape != variance.shape:
            raise ValueError(f"{name}: the error {error.shape} and the variance "
                             f"{variance.shape} differ in shape")
    bands = {error.shape[0] for error, _ in samples.values()}
    if len(bands) != 1:
        raise ValueError(f"every condition needs the same bands, got {sorted(bands)}")
    chosen: list[float] = []
    coverage: dict[str, list[float]] = {name: [] for name in samples}
    for band in range(bands.pop()):
        scale, by_condition = fit_variance_scale(
            {name: coverage_curve(error[band], np.sqrt(variance[band]), factors)
             for name, (error, variance) in samples.items()}, low, high, target, factors)
        chosen.append(scale)
        for name, value in by_condition.items():
            coverage[name].append(value)
    return tuple(chosen), coverage


__all__ = ["NOISE_WEIGHTS", "ONE_SIGMA", "SIGMA_FACTORS", "SigmaFit", "coverage_curve",
           "fit_band_factors", "fit_sigma_calibration", "fit_variance_scale"]
