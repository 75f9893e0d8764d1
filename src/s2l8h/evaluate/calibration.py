"""Calibrating an ensemble's σ across conditions: one factor on the variance, chosen on
validation data so that the fraction of errors within 1σ stays inside a band (0.60-0.80 by
default, the target 0.683) in every condition at once.

A single factor cannot make every condition exact: the networks' σ carries a floor for the
departures they cannot see (offsets, misregistration), which is too wide where there are
none. :func:`fit_variance_scale` therefore minimises the worst excursion outside the band
over all conditions, and among equally good factors the mean distance from the target.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: |e| <= this · σ is the central 68.27 % interval of a Gaussian.
ONE_SIGMA = 0.994
#: The factors on σ (not σ²) searched.
SIGMA_FACTORS = np.round(np.arange(0.50, 1.501, 0.01), 2)


def coverage_curve(error: np.ndarray, std: np.ndarray,
                   factors: np.ndarray = SIGMA_FACTORS) -> np.ndarray:
    """Fraction of ``|error| <= ONE_SIGMA · factor · std`` for each factor (any shapes,
    finite values only)."""
    ratio = np.abs(error) / np.maximum(std, 1e-12)
    ratio = np.sort(ratio[np.isfinite(ratio)].ravel())
    if ratio.size == 0:
        raise ValueError("no finite error/σ pair")
    return np.searchsorted(ratio, ONE_SIGMA * np.asarray(factors), side="right") / ratio.size


def fit_variance_scale(curves: Mapping[str, np.ndarray], low: float = 0.60,
                       high: float = 0.80, target: float = 0.6827,
                       factors: np.ndarray = SIGMA_FACTORS) -> tuple[float, dict[str, float]]:
    """The factor on the variance (the square of the chosen σ factor) whose worst coverage
    excursion outside ``[low, high]`` over ``curves`` (condition -> :func:`coverage_curve`)
    is smallest, ties broken by the mean distance from ``target``; and each condition's
    coverage at it."""
    table = np.stack([np.asarray(curve) for curve in curves.values()])
    excursion = np.maximum(low - table, 0) + np.maximum(table - high, 0)
    worst = excursion.max(axis=0)
    spread = np.abs(table - target).mean(axis=0)
    best = np.lexsort((spread, np.round(worst, 4)))[0]
    factor = float(factors[best])
    return factor**2, {name: float(table[row, best]) for row, name in enumerate(curves)}


__all__ = ["ONE_SIGMA", "SIGMA_FACTORS", "coverage_curve", "fit_variance_scale"]
