"""The realistic degradation model: each factor measured on a known image."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox

from s2l8h.bandpass import HLS_BANDPASS, msi_to_oli
from s2l8h.data.simulate import (
    CONDITIONS,
    PAN_ADD,
    PAN_MULT,
    TRAINING_RANGES,
    Degradation,
    _blur_and_shift,
    degrade,
    move_content,
    oli_noise_std,
    psf_sigma,
    sample_degradation,
    simulate_landsat,
    write_simulated_scene,
)
from s2l8h.inference.checks import measure_shift
from s2l8h.io.sentinel2 import read_sentinel2

VIRGINIA = Path(__file__).parents[1] / "data" / "s2_l1c_virginia_north"


def _grid(rows: int, cols: int) -> GeoBox:
    return GeoBox((rows, cols), Affine(10, 0, 435730, 0, -10, 4179460), "EPSG:32618")


@pytest.fixture(scope="module")
def virginia():
    crop = GeoBox((240, 240), Affine(10, 0, 440730, 0, -10, 4176460), "EPSG:32618")
    return read_sentinel2(VIRGINIA, grid=crop)


def test_oli_noise_levels_and_signal_dependence() -> None:
    # σ at the typical reflectance is ρ_typ / SNR (Morfitt et al. 2015): blue 0.061 / 364.
    assert oli_noise_std(np.array(0.061), 0) == pytest.approx(0.061 / 364)
    assert oli_noise_std(np.array(0.3), 3) > oli_noise_std(np.array(0.05), 3)
    flat = np.full((6, 300, 300), 0.2)
    for scale in (1.0, 3.0):
        multispectral, pan, _ = degrade(flat, Degradation(noise_scale=scale, sun_elevation=90),
                                        np.random.default_rng(0))
        for band in range(6):
            level = msi_to_oli(flat[:, :1, :1])[band, 0, 0]
            expected = scale * oli_noise_std(np.array(level), band)
            assert np.std(multispectral[band]) == pytest.approx(expected, rel=0.05)
        assert np.std(pan) == pytest.approx(scale * oli_noise_std(np.array(0.2), 6), rel=0.05)


def _line_spread_sigma(profile: np.ndarray) -> float:
    derivative = np.diff(profile)
    positions = np.arange(derivative.size)
    weights = derivative / derivative.sum()
    centre = np.sum(weights * positions)
    return float(np.sqrt(np.sum(weights * (positions - centre) ** 2)))


def test_psf_width_measured_from_an_edge() -> None:
    edge = np.zeros((1, 40, 200))
    edge[..., 100:] = 1.0
    for scale in (0.7, 1.0, 1.4):
        sigma = scale * psf_sigma(30.0) / 10
        blurred = _blur_and_shift(edge, sigma, (0.0, 0.0), 10.0)
        assert _line_spread_sigma(blurred[0, 20]) == pytest.approx(sigma, rel=0.03)
    # Through the whole chain, a blurrier PSF widens the 10-90 % rise of the 30 m edge.
    widths = []
    big = np.repeat(edge, 6, axis=0)[:, :, :180]
    for scale in (0.7, 1.4):
        multispectral, _, _ = degrade(big, Degradation(psf_scale_ms=scale),
                                      np.random.default_rng(0))
        profile = multispectral[1, 5]
        normalized = (profile - profile.min()) / (profile.max() - profile.min())
        widths.append(np.interp(0.9, normalized, np.arange(normalized.size))
                      - np.interp(0.1, normalized, np.arange(normalized.size)))
    # 30 m sampling and the 30 m area average damp the ratio of σ (2x) to about 1.3x.
    assert widths[1] > 1.25 * widths[0]


def _measured(reference: np.ndarray, moving: np.ndarray, pixel: float) -> tuple:
    """(dx east, dy north) metres of ``moving``'s content against ``reference``'s."""
    return measure_shift(reference[8:-8, 8:-8].astype(np.float64),
                         moving[8:-8, 8:-8].astype(np.float64), pixel)


def test_shifts_measured_by_phase_correlation(virginia) -> None:
    reflectance, valid, grid = virginia
    sigma = psf_sigma(30.0) / 10
    reference = _blur_and_shift(reflectance[2], sigma, (0.0, 0.0), 10.0)
    for shift in ((9.0, -12.0), (-4.0, 6.0)):
        moved = _blur_and_shift(reflectance[2], sigma, shift, 10.0)
        assert _measured(reference, moved, 10.0) == pytest.approx(shift, abs=0.5)
    # Through the whole chain, on the 15 m pan and the 30 m bands.
    clean = simulate_landsat(reflectance, valid, grid)
    shifted = simulate_landsat(reflectance, valid, grid, degradation=Degradation(
        shift_ms=(9.0, -12.0), shift_pan=(7.5, 0.0)))
    dx, dy = _measured(clean.pan, shifted.pan, 15.0)
    assert dx == pytest.approx(16.5, abs=1.5) and dy == pytest.approx(-12.0, abs=1.5)
    dx, dy = _measured(clean.multispectral[2], shifted.multispectral[2], 30.0)
    assert dx == pytest.approx(9.0, abs=1.5) and dy == pytest.approx(-12.0, abs=1.5)


def test_move_content_moves_as_the_simulation_does(virginia) -> None:
    reflectance, _, _ = virginia
    sigma = psf_sigma(30.0) / 10
    moved = move_content(reflectance[2], (9.0, -12.0))
    assert _measured(reflectance[2], moved, 10.0) == pytest.approx((9.0, -12.0), abs=0.5)
    # Blurring then moving is the simulation's blur centred off the pixel.
    blurred = _blur_and_shift(reflectance[2], sigma, (0.0, 0.0), 10.0)
    expected = _blur_and_shift(reflectance[2], sigma, (9.0, -12.0), 10.0)
    inner = (slice(8, -8), slice(8, -8))
    error = move_content(blurred, (9.0, -12.0))[inner] - expected[inner]
    assert np.sqrt(np.mean(error**2)) < 0.02 * np.std(expected[inner])
    assert move_content(reflectance, (0.0, 0.0)) == pytest.approx(reflectance, abs=1e-6)
    assert move_content(reflectance, (9.0, -12.0)).shape == reflectance.shape


def test_gain_offset_and_level1_pan_radiometry(virginia) -> None:
    reflectance, valid, grid = virginia
    clean = simulate_landsat(reflectance, valid, grid, sun_elevation=90.0)
    offset = (0.01, -0.008, 0.006, -0.01, 0.008, -0.006)
    gain = (1.02, 0.98, 1.0, 1.01, 0.99, 1.0)
    changed = simulate_landsat(reflectance, valid, grid, degradation=Degradation(
        gain=gain, offset=offset, sun_elevation=35.0, pan_path=0.05, pan_transmittance=0.85))
    for band in range(6):
        np.testing.assert_allclose(changed.multispectral[band],
                                   gain[band] * clean.multispectral[band] + offset[band],
                                   atol=1e-6)
    expected_pan = math.sin(math.radians(35)) * (0.05 + 0.85 * clean.pan)
    np.testing.assert_allclose(changed.pan, expected_pan, atol=1e-6)


def test_pan_gap_is_no_data_in_the_written_scene(virginia, tmp_path: Path) -> None:
    reflectance, valid, grid = virginia
    simulated = simulate_landsat(reflectance, valid, grid,
                                 degradation=Degradation(pan_gap=0.25))
    columns = simulated.pan.shape[1]
    assert (simulated.pan[:, :columns // 4] == 0).all()
    assert (simulated.pan[:, columns // 4 + 1:] > 0).all()
    scene, _ = write_simulated_scene(simulated, tmp_path / "sim")
    (pan_file,) = scene.glob("*_B8.TIF")
    with rasterio.open(pan_file) as dataset:
        digital_numbers = dataset.read(1)
    assert (digital_numbers[:, :columns // 4] == 0).all()
    np.testing.assert_allclose(digital_numbers[:, -5:] * PAN_MULT + PAN_ADD,
                               simulated.pan[:, -5:], atol=PAN_MULT)


def test_bandpass_platforms() -> None:
    reflectance = np.full((6, 2, 2), 0.3)
    s2a, s2b, s2c = (msi_to_oli(reflectance, p) for p in ("S2A", "S2B", "S2C"))
    np.testing.assert_allclose(s2c, (s2a + s2b) / 2, atol=1e-12)
    assert HLS_BANDPASS["S2B"][5] == (0.9867, 0.0004)
    with pytest.raises(ValueError, match="platform"):
        Degradation(platform="S2D")


def test_random_draws_stay_in_their_ranges_and_repeat_with_the_seed() -> None:
    draws = [sample_degradation(np.random.default_rng(seed)) for seed in range(300)]
    ranges = TRAINING_RANGES
    noisy = [d for d in draws if d.noise_scale > 0]
    assert 0.8 * 300 < len(noisy) < 300  # about 10 % clean draws
    for draw in noisy:
        assert ranges.noise_scale[0] <= draw.noise_scale <= ranges.noise_scale[1]
        assert ranges.psf_scale[0] <= draw.psf_scale_ms <= ranges.psf_scale[1]
        assert max(abs(v) for v in draw.shift_ms) <= ranges.shift_ms_m
        assert max(abs(v) for v in draw.shift_pan) <= ranges.shift_pan_m
        assert max(abs(v) for v in draw.offset) <= ranges.offset
        assert ranges.sun_elevation[0] <= draw.sun_elevation <= ranges.sun_elevation[1]
    assert {d.platform for d in draws} == {"S2A", "S2B", "S2C"}
    assert 0.03 < np.mean([d.pan_gap > 0 for d in noisy]) < 0.2
    assert sample_degradation(np.random.default_rng(7)) == sample_degradation(
        np.random.default_rng(7))


def test_named_conditions_cover_the_departures() -> None:
    for name in ("clean", "noise-oli", "noise-3x", "noise-0.002", "misregistration",
                 "psf-sharper", "psf-blurrier", "bandpass-s2b", "l1-pan", "pan-shift",
                 "atmosphere", "realistic"):
        assert name in CONDITIONS
    assert CONDITIONS["clean"] == Degradation()
    realistic = CONDITIONS["realistic"]
    assert realistic.noise_scale > 0 and realistic.shift_pan != (0, 0)
    assert realistic.pan_path > 0 and realistic.platform == "S2B"
