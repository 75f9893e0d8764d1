"""Radiometric consistency of the output with the 30 m input (s2l8h.inference.consistency)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from odc.geo.geobox import GeoBox
from scipy import ndimage

from s2l8h.bandpass import msi_to_oli
from s2l8h.data.simulate import Degradation, simulate_landsat, write_simulated_scene
from s2l8h.evaluate.benchmark import read_prediction
from s2l8h.evaluate.metrics import psnr
from s2l8h.inference.checks import to_landsat
from s2l8h.inference.consistency import (
    ConsistentPredictor,
    LevelShifts,
    consistency_residual,
    landsat_view,
    level_departure,
    pan_disagreement,
    project,
    residual_noise,
    wiener_shrink,
)
from s2l8h.inference.harmonize import harmonize
from s2l8h.inference.uncertainty import Predictor
from s2l8h.io.sentinel2 import read_sentinel2

VIRGINIA = Path(__file__).parents[1] / "data" / "s2_l1c_virginia_north"


def _smooth_image(seed: int, shape=(6, 60, 72), sigma: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(shape)
    return 0.05 + 0.2 * np.abs(ndimage.gaussian_filter(noise, (0, sigma, sigma)))


def test_landsat_view_matches_the_numpy_consistency_check() -> None:
    image = _smooth_image(0)
    expected, _ = to_landsat(image, np.ones(image.shape[1:], dtype=bool))
    got = landsat_view(torch.from_numpy(image)[None])[0].numpy()
    assert got.shape == (6, 20, 24)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_landsat_view_of_a_constant_is_its_oli_value() -> None:
    image = np.full((6, 30, 30), 0.2)
    got = landsat_view(torch.from_numpy(image)[None])[0].numpy()
    np.testing.assert_allclose(got, msi_to_oli(image)[:, :10, :10], atol=1e-12)


def test_projection_removes_a_smooth_error_and_a_constant_one() -> None:
    truth = torch.from_numpy(_smooth_image(1))[None]
    observed = landsat_view(truth)
    smooth_error = 0.01 * torch.from_numpy(_smooth_image(2, sigma=6.0) - 0.05)[None]
    smooth_error = smooth_error - smooth_error.mean(dim=(-2, -1), keepdim=True)
    projected = project(truth + smooth_error, observed)
    before = (smooth_error ** 2).mean().sqrt()
    after = ((projected - truth) ** 2)[..., 6:-6, 6:-6].mean().sqrt()
    assert after < 0.3 * before
    # A constant offset (the level the networks move a band by) goes too, unless it is kept.
    shifted = project(truth + 0.01, observed)
    np.testing.assert_allclose((shifted - truth)[..., 6:-6, 6:-6].numpy(), 0.0, atol=1e-4)
    kept = project(truth + 0.01, observed, restore_level=False)
    np.testing.assert_allclose((kept - truth)[..., 6:-6, 6:-6].numpy(), 0.01, atol=1e-4)
    # Residual of a consistent output: zero up to the edges.
    residual = consistency_residual(truth, observed)
    assert residual[..., 2:-2, 2:-2].abs().max() < 1e-9


class _Blurry(Predictor):
    """A stand-in model: bicubic upsampling of the bands, a constant variance."""

    def __init__(self) -> None:
        self.models = []
        self.method = "head"

    @property
    def gives_variance(self) -> bool:
        return True

    def __call__(self, multispectral, pan):
        mean = torch.nn.functional.interpolate(multispectral[:, :6], scale_factor=3,
                                               mode="bicubic", align_corners=False)
        return mean, torch.full_like(mean, 4e-6)


def test_consistent_predictor_makes_bicubic_consistent_and_passes_the_variance() -> None:
    truth = torch.from_numpy(_smooth_image(3, sigma=1.0))[None].float()
    observed = landsat_view(truth)
    raw_mean, raw_variance = _Blurry()(observed, None)
    predictor = ConsistentPredictor(_Blurry(), steps=1, denoise=False)
    mean, variance = predictor(observed, None)
    assert predictor.method == "head" and predictor.gives_variance
    assert torch.equal(variance, raw_variance)
    inner = (..., slice(3, -3), slice(3, -3))
    raw_residual = (landsat_view(raw_mean) - observed)[inner].abs().mean()
    residual = (landsat_view(mean) - observed)[inner].abs().mean()
    assert residual < 0.75 * raw_residual  # one back-projection step: about a third off
    raw_psnr = psnr(raw_mean[0].numpy(), truth[0].numpy())
    assert psnr(mean[0].numpy(), truth[0].numpy()) > raw_psnr
    # The default filters the residual (this fine texture is partly taken for noise): less
    # of it is put back, but still some, and the output still gains.
    denoised, _ = ConsistentPredictor(_Blurry(), steps=1)(observed, None)
    denoised_residual = (landsat_view(denoised) - observed)[inner].abs().mean()
    assert residual < denoised_residual < 0.9 * raw_residual
    assert psnr(denoised[0].numpy(), truth[0].numpy()) > raw_psnr
    # More steps, closer to the input; two are the default.
    twice, _ = ConsistentPredictor(_Blurry(), steps=2, denoise=False)(observed, None)
    assert (landsat_view(twice) - observed)[inner].abs().mean() < 0.9 * residual
    assert ConsistentPredictor(_Blurry()).steps == 2
    # No step: the mean as it is (only a level term would be added).
    untouched, _ = ConsistentPredictor(_Blurry(), steps=0)(observed, None)
    assert torch.equal(untouched, raw_mean)
    with pytest.raises(ValueError, match="steps"):
        ConsistentPredictor(_Blurry(), steps=-1)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    crop = GeoBox((180, 180), Affine(10, 0, 438730, 0, -10, 4177460), "EPSG:32618")
    reflectance, valid, grid = read_sentinel2(VIRGINIA, grid=crop)
    folder = tmp_path_factory.mktemp("sim")
    simulation = simulate_landsat(reflectance, valid, grid, degradation=Degradation())
    scene, target = write_simulated_scene(simulation, folder)
    return scene, target


def test_harmonize_output_is_more_consistent_and_tagged(simulated, tmp_path: Path) -> None:
    scene, target = simulated
    outputs = {}
    for consistency in (True, False):
        path = tmp_path / f"out-{consistency}.tif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            harmonize(scene, path, models=["lite2.real-wald-a"], like=target, progress=False,
                      mask_flags=(), dtype="float32", consistency=consistency)
        with rasterio.open(path) as dataset:
            tags = dataset.tags()
        assert json.loads(tags["S2L8H_OPTIONS"])["consistency"] is consistency
        outputs[consistency] = json.loads(tags["S2L8H_CONSISTENCY"])
    raw, projected = outputs[False], outputs[True]
    assert all(after < before for after, before in zip(projected["rmse"], raw["rmse"],
                                                        strict=True))
    # Measured: 0.00381 vs 0.00422 (two steps, the level restored up to the data's edge).
    assert np.mean(projected["rmse"]) < 0.92 * np.mean(raw["rmse"])
    assert projected["sam_degrees"] < 0.75 * raw["sam_degrees"]
    prediction = {flag: read_prediction(tmp_path / f"out-{flag}.tif")[0]
                  for flag in (True, False)}
    with rasterio.open(target) as dataset:
        truth = dataset.read()
    inner = (slice(None), slice(12, -12), slice(12, -12))
    # Measured: 40.59 vs 40.39 dB on this crop (member A of the default, clean simulation).
    assert psnr(prediction[True][inner], truth[inner]) > \
        psnr(prediction[False][inner], truth[inner]) + 0.1


def test_qa_measures_consistency_as_harmonize_does(simulated, tmp_path: Path) -> None:
    """The output is on the Sentinel-2 phase; ``qa --scene`` warps it back onto the scene's
    grid, where ``harmonize`` measured it: the two reports agree."""
    from s2l8h.evaluate.qa import consistency_with_scene

    scene, target = simulated
    path = tmp_path / "out.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        harmonize(scene, path, models=["lite2.real-wald-a"], like=target, progress=False,
                  mask_flags=(), dtype="float32")
    with rasterio.open(path) as dataset:
        tagged = json.loads(dataset.tags()["S2L8H_CONSISTENCY"])
    measured = consistency_with_scene(path, scene)["consistency"]
    # (the warp back loses the edge pixels, where the two differ most)
    np.testing.assert_allclose(measured["bias"], tagged["bias"], atol=1.5e-3)
    assert abs(measured["sam_degrees"] - tagged["sam_degrees"]) < 0.2


def test_wiener_shrink_removes_white_noise_and_keeps_edges() -> None:
    generator = torch.Generator().manual_seed(0)
    noise = 0.002 * torch.randn((1, 6, 96, 96), generator=generator, dtype=torch.float64)
    # Zero noise variance: the identity.
    torch.testing.assert_close(wiener_shrink(noise, torch.tensor(0.0, dtype=torch.float64)),
                               noise, atol=1e-12, rtol=0)
    # Pure noise of the stated variance: little more than its 3 x 3 local mean is left.
    assert wiener_shrink(noise, torch.tensor(0.002 ** 2)).std() < 0.5 * noise.std()
    # Squares of 12 pixels, 0.05 apart: the noise goes inside them, the edges stay sharp.
    rows, cols = torch.meshgrid(torch.arange(96), torch.arange(96), indexing="ij")
    squares = (0.05 * ((rows // 12 + cols // 12) % 2)).to(torch.float64).expand(1, 6, 96, 96)
    error = (wiener_shrink(squares + noise, torch.tensor(0.002 ** 2)) - squares)[..., 2:-2, 2:-2]
    to_edge = torch.minimum(torch.minimum(rows % 12, 11 - rows % 12),
                            torch.minimum(cols % 12, 11 - cols % 12))[2:-2, 2:-2]
    assert error[..., to_edge > 0].pow(2).mean().sqrt() < 0.5 * noise.std()
    box = torch.nn.functional.avg_pool2d(squares + noise, 3, stride=1)
    box_error = (box - squares[..., 1:-1, 1:-1])[..., 1:-1, 1:-1]
    edge = to_edge == 0
    assert error[..., edge].abs().mean() < 0.2 * box_error[..., edge].abs().mean()


def test_residual_noise_is_the_residuals_own_noise() -> None:
    generator = torch.Generator().manual_seed(1)
    residual = 0.003 * torch.randn((2, 6, 90, 90), generator=generator)
    usable = torch.ones_like(residual, dtype=torch.bool)
    usable[1, :, :, :40] = False  # pixels consistency_residual zeroes
    residual[1, :, :, :40] = 0.0
    estimate = residual_noise(residual, usable)
    assert estimate.shape == (2, 6, 1, 1)
    np.testing.assert_allclose(estimate.numpy(), 0.003, rtol=0.1)
    # Too few usable pixels for an estimate: none.
    few = torch.zeros_like(usable)
    few[..., :5, :5] = True
    assert torch.equal(residual_noise(residual, few), torch.zeros((2, 6, 1, 1)))


def test_denoised_projection_puts_back_less_of_the_input_noise() -> None:
    truth = torch.from_numpy(_smooth_image(4, shape=(6, 150, 150)))[None]
    clean = landsat_view(truth)
    generator = torch.Generator().manual_seed(2)
    observed = clean + 0.002 * torch.randn(clean.shape, generator=generator,
                                           dtype=clean.dtype)
    inner = (..., slice(9, -9), slice(9, -9))
    plain = (project(truth, observed, denoise=False) - truth)[inner].std()
    denoised = (project(truth, observed) - truth)[inner].std()
    assert denoised < 0.6 * plain
    # A smooth error without noise is removed as well as without the filter.
    smooth_error = 0.01 * torch.from_numpy(_smooth_image(5, shape=(6, 150, 150), sigma=6.0)
                                           - 0.05)[None]
    smooth_error = smooth_error - smooth_error.mean(dim=(-2, -1), keepdim=True)
    errors = [(project(truth + smooth_error, clean, denoise=flag) - truth)[inner].pow(2)
              .mean().sqrt() for flag in (False, True)]
    assert errors[1] < 1.02 * errors[0]
    assert errors[1] < 0.3 * smooth_error.pow(2).mean().sqrt()


class _Offset(Predictor):
    """A stand-in model: a fixed mean and a constant variance."""

    def __init__(self, mean: torch.Tensor) -> None:
        self.models = []
        self.method = "ensemble"
        self.mean = mean

    @property
    def gives_variance(self) -> bool:
        return True

    def __call__(self, multispectral, pan):
        return self.mean, torch.full_like(self.mean, 4e-6)


def test_the_level_departure_is_restored_and_enters_the_variance() -> None:
    truth = torch.from_numpy(_smooth_image(6, shape=(6, 90, 90)))[None]
    observed = landsat_view(truth)
    offset = torch.tensor([0.01, -0.004, 0.0, 0.002, -0.02, 0.006],
                          dtype=truth.dtype).view(1, 6, 1, 1)
    brighter = truth + offset
    # The output is brighter than its input says by the offset: the level is minus it.
    np.testing.assert_allclose(level_departure(brighter, observed).numpy(), -offset.numpy(),
                               atol=1e-9)
    mean, variance = ConsistentPredictor(_Offset(brighter), level_variance_scale=0.5)(
        observed, None)
    # σ² = the predictor's + 0.5 · L², per band; the input's level is put back in the mean.
    np.testing.assert_allclose(variance.numpy(),
                               np.broadcast_to(4e-6 + 0.5 * offset.numpy() ** 2, mean.shape),
                               rtol=1e-4)
    inner = (..., slice(9, -9), slice(9, -9))
    np.testing.assert_allclose((mean - truth)[inner].numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(project(brighter, observed)[inner].numpy(), mean[inner].numpy(),
                               atol=1e-6)
    # restore_level=False: the networks' level stays in the mean (the step as it was).
    kept, _ = ConsistentPredictor(_Offset(brighter), restore_level=False)(observed, None)
    np.testing.assert_allclose((kept - truth)[inner].numpy(),
                               np.broadcast_to(offset.numpy(), (1, 6, 72, 72)), atol=1e-6)
    np.testing.assert_allclose(project(brighter, observed, restore_level=False)[inner].numpy(),
                               kept[inner].numpy(), atol=1e-6)
    # No step: the mean as it is, the level term all the same.
    untouched, level_only = ConsistentPredictor(_Offset(brighter), steps=0,
                                                level_variance_scale=0.5)(observed, None)
    assert torch.equal(untouched, brighter) and torch.equal(level_only, variance)
    _, plain = ConsistentPredictor(_Offset(brighter))(observed, None)
    assert torch.equal(plain, torch.full_like(plain, 4e-6))
    with pytest.raises(ValueError, match="level_variance_scale"):
        ConsistentPredictor(_Offset(brighter), level_variance_scale=-1.0)


class _MeanOnly(_Offset):
    """A stand-in model without σ."""

    @property
    def gives_variance(self) -> bool:
        return False

    def __call__(self, multispectral, pan):
        return self.mean, None


def test_the_networks_level_shift_is_recorded_per_tile() -> None:
    """The consistency step records, per tile and band, the networks' level minus the input's
    (before it puts the input's level back); the scene's summary is the median over tiles
    and the 90th percentile of its size, counting only bands of tiles with enough data, and
    says whether the output keeps the input's level and whether σ includes the shift."""
    truth = torch.from_numpy(_smooth_image(6, shape=(6, 90, 90)))[None]
    observed = landsat_view(truth)
    offset = torch.tensor([0.01, -0.004, 0.0, 0.002, -0.02, 0.006],
                          dtype=truth.dtype).view(1, 6, 1, 1)
    stand_in = _Offset(truth + offset)
    predictor = ConsistentPredictor(stand_in)
    assert predictor.level_shifts.summary() is None
    predictor(observed, None)
    first = predictor.level_shifts.summary()
    assert first["tiles"] == 1 and first["restored"] and not first["in_sigma"]
    np.testing.assert_allclose(first["median"], offset.numpy().ravel(), atol=2e-5)
    np.testing.assert_allclose(first["p90_abs"], np.abs(offset.numpy().ravel()), atol=2e-5)
    # A second tile with data only in a corner too small to count (MIN_LEVEL_PIXELS).
    corner = torch.zeros_like(observed)
    corner[..., :4, :4] = observed[..., :4, :4]
    predictor(corner, None)
    assert predictor.level_shifts.summary() == first
    # Two more tiles in one batch, the offset doubled and tripled: the median is the doubled
    # one, the 90th percentile of the sizes 2.8 x the offset.
    stand_in.mean = torch.cat([truth + 2 * offset, truth + 3 * offset])
    predictor(torch.cat([observed, observed]), None)
    summary = predictor.level_shifts.summary()
    assert summary["tiles"] == 3
    np.testing.assert_allclose(summary["median"], 2 * offset.numpy().ravel(), atol=5e-5)
    np.testing.assert_allclose(summary["p90_abs"], 2.8 * np.abs(offset.numpy().ravel()),
                               atol=5e-5)
    # A tile whose left half is filled with 0 (no data): the filled pixels stay out.
    half = observed.clone()
    half[..., :15] = 0
    stand_in.mean = truth + offset
    halved = ConsistentPredictor(stand_in)
    halved(half, None)
    np.testing.assert_allclose(halved.level_shifts.summary()["median"],
                               offset.numpy().ravel(), atol=2e-5)
    # No consistency step but the input filter: recorded, and the output keeps the
    # networks' level; with a calibrated level term σ includes it.
    unrestored = ConsistentPredictor(stand_in, steps=0, filter_input=True,
                                     level_variance_scale=0.5)
    unrestored(observed, None)
    summary = unrestored.level_shifts.summary()
    assert not summary["restored"] and summary["in_sigma"]
    np.testing.assert_allclose(summary["median"], offset.numpy().ravel(), atol=5e-4)
    # A level term over a predictor without σ: σ does not include the shift.
    without_sigma = ConsistentPredictor(_MeanOnly(truth + offset), level_variance_scale=0.5)
    _, variance = without_sigma(observed, None)
    assert variance is None and not without_sigma.level_shifts.summary()["in_sigma"]
    # Nothing to do at all (no step, no filter, no σ term): nothing measured.
    idle = ConsistentPredictor(stand_in, steps=0)
    idle(observed, None)
    assert idle.level_shifts.summary() is None
    # A band never counted is None; the others are still summarised.
    record = LevelShifts()
    usable = torch.ones(1, 6, 10, 10, dtype=torch.bool)
    usable[:, 2] = False
    record.add(torch.full((1, 6, 1, 1), -0.003), ~usable)
    assert record.summary() == {"tiles": 1, "median": [0.003, 0.003, None, 0.003, 0.003, 0.003],
                                "p90_abs": [0.003, 0.003, None, 0.003, 0.003, 0.003],
                                "restored": True, "in_sigma": False}


def test_pan_disagreement_does_not_depend_on_the_tile_size() -> None:
    """The pan is regressed on the bands over a fixed window, not over the tile: where the
    pan's relation to the bands changes across a scene (left and right halves here), a crop
    inside one half gives its pixels the figure the whole scene gives them. Fitted over the
    whole tile (the regression before 2026-12-07), the crop's figure would be far smaller."""
    rng = np.random.default_rng(5)
    bands = torch.from_numpy(_smooth_image(21, shape=(6, 40, 80)))[None]
    left = 0.3 * bands[:, :1] + 0.5 * bands[:, 1:2] + 0.25 * bands[:, 2:3]
    right = 0.1 * bands[:, :1] + 0.3 * bands[:, 1:2] + 0.6 * bands[:, 2:3] + 0.01
    pan30 = torch.cat([left[..., :40], right[..., 40:]], dim=-1)
    pan30 = pan30 + torch.from_numpy(0.002 * rng.standard_normal((1, 1, 40, 80)))
    pan = pan30.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    crop_bands, crop_pan30 = bands[..., 4:36, 2:34], pan30[..., 4:36, 2:34]
    whole = pan_disagreement(bands, pan)[0, 0]
    crop = pan_disagreement(crop_bands.contiguous(), pan[..., 8:72, 4:68].contiguous())[0, 0]

    def slope(visible: torch.Tensor, target: torch.Tensor) -> float:
        # The tile's slope of the pan on the visible bands' mean, which the figure divides by.
        design = torch.stack([visible[0, :3].mean(dim=0).reshape(-1),
                              torch.ones(visible[0, 0].numel(), dtype=visible.dtype)], dim=1)
        return float(torch.linalg.lstsq(design, target.reshape(-1, 1)).solution[0, 0])

    # Pixels at least 6 px (30 m) inside the crop, so that their 9 x 9 windows and the 3 x 3
    # RMS lie inside it, and away from the halves' border: the same fit, pixel by pixel; only
    # the tile's slope differs.
    inner_crop = crop[18:78, 18:78] * slope(crop_bands, crop_pan30)
    inner_whole = whole[30:90, 24:84] * slope(bands, pan30)
    torch.testing.assert_close(inner_crop, inner_whole, rtol=1e-6, atol=1e-9)
    # One regression over the whole scene leaves the halves' difference in its residual.
    design = torch.cat([bands[0, :3], torch.ones_like(bands[0, :1])]).reshape(4, -1).T
    fit = torch.linalg.lstsq(design, pan30.reshape(-1, 1)).solution
    whole_tile_residual = (pan30.reshape(-1, 1) - design @ fit).std()
    assert float(whole_tile_residual) > 2.5 * float(inner_whole.median())


def test_local_fit_is_least_squares_over_each_window() -> None:
    """Each pixel's fit is the least-squares fit over the usable pixels of its 9 x 9 window
    (cut at the tile's edges), or the tile's fit where the window holds fewer than 12."""
    from s2l8h.inference.consistency import PAN_REGRESSION_WINDOW, _local_fit

    rng = np.random.default_rng(0)
    height, width = 20, 23
    bands = 0.1 + 0.05 * rng.random((3, height, width))
    target = (0.3 * bands[0] + 0.5 * bands[1] + 0.2 * bands[2]
              + 0.01 * rng.standard_normal((height, width)) + 0.02 * np.sin(np.arange(width)))
    keep = rng.random((height, width)) > 0.25
    keep[:, :3] = False
    keep[12:, 15:] &= rng.random((8, 8)) > 0.85  # windows with too few usable pixels
    design = np.concatenate([bands, np.ones((1, height, width))])
    fallback = np.array([0.1, 0.2, 0.3, 0.4])
    fitted = _local_fit(torch.from_numpy(np.where(keep, design, np.nan)),
                        torch.from_numpy(np.where(keep, target, np.nan))[None],
                        torch.from_numpy(keep)[None], torch.from_numpy(fallback))[0].numpy()
    assert np.isnan(fitted[~keep]).all()
    half = PAN_REGRESSION_WINDOW // 2
    fallbacks = 0
    for row, col in zip(*np.nonzero(keep), strict=True):
        rows = slice(max(0, row - half), row + half + 1)
        cols = slice(max(0, col - half), col + half + 1)
        inside = keep[rows, cols]
        if inside.sum() < 12:
            expected = design[:, row, col] @ fallback
            fallbacks += 1
        else:
            coefficients = np.linalg.lstsq(design[:, rows, cols][:, inside].T,
                                           target[rows, cols][inside], rcond=None)[0]
            expected = design[:, row, col] @ coefficients
        assert fitted[row, col] == pytest.approx(expected, abs=1e-7)
    assert fallbacks > 0


def test_pan_disagreement_is_zero_for_a_pan_the_bands_explain() -> None:
    """A pan that is a linear mix of blue, green and red (any gain and offset, 2 x 2 pixels
    per band pixel) has no disagreement; a patch of pan detail the bands lack shows where it
    is, in the pan's units, on the 10 m grid."""
    bands = torch.from_numpy(_smooth_image(12, shape=(6, 30, 36)))[None] + 0.05
    pan30 = 0.3 * bands[:, :1] + 0.5 * bands[:, 1:2] + 0.25 * bands[:, 2:3] + 0.02
    pan = pan30.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    explained = pan_disagreement(bands, pan)
    assert explained.shape == (1, 1, 90, 108)
    assert float(explained.abs().max()) < 1e-6
    moved = pan.clone()
    moved[..., 20:30, 40:50] += 0.03  # 5 x 5 band pixels of pan detail the bands lack
    spread = pan_disagreement(bands, moved)
    inside, far = spread[..., 33:42, 63:72], spread[..., :20, :20]
    assert float(inside.min()) > 0.015 and float(far.max()) < 0.004
    # In band reflectance: a Level-1 pan (x sin(sun elevation), here 0.6) gives the same.
    np.testing.assert_allclose(pan_disagreement(bands, 0.6 * moved).numpy(), spread.numpy(),
                               rtol=1e-6, atol=1e-9)
    # Filled input (all bands 0, one band 0, or one of the four pan pixels 0: a gap ending on
    # an odd pan row) is left out of the fit and of the local RMS; a tile with too few pixels
    # of data has none.
    filled = bands.clone()
    filled[..., :10, :] = 0.0
    filled[:, 4, 10:12, :] = 0.0  # one band's edge two rows further in
    gap = pan.clone()
    gap[..., :25, :] = 0.0  # 12 band rows, the 13th with one pan row of two
    for band_input, pan_input in ((filled, pan), (bands, gap)):
        assert float(pan_disagreement(band_input, pan_input).abs().max()) < 1e-6
    assert torch.equal(pan_disagreement(bands[..., :3, :3], pan[..., :6, :6]),
                       torch.zeros(1, 1, 9, 9, dtype=bands.dtype))
    with pytest.raises(ValueError, match="window must be odd"):
        pan_disagreement(bands, pan, window=2)
    with pytest.raises(ValueError, match="must cover twice"):
        pan_disagreement(bands, pan[..., :-2, :])


def test_the_pan_term_enters_the_variance() -> None:
    truth = torch.from_numpy(_smooth_image(13, shape=(6, 90, 90)))[None]
    observed = landsat_view(truth)
    pan30 = 0.4 * observed[:, :1] + 0.6 * observed[:, 1:2]
    pan = pan30.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    pan[..., 10:20, 10:20] += 0.02
    expected = 4e-6 + 3.0 * pan_disagreement(observed, pan) ** 2
    for steps in (2, 0):
        _, variance = ConsistentPredictor(_Offset(truth), steps=steps,
                                          pan_variance_scale=3.0)(observed, pan)
        np.testing.assert_allclose(variance.numpy(), np.broadcast_to(expected.numpy(),
                                                                     variance.shape),
                                   rtol=1e-5)
    assert float(variance.max()) > 1e-4  # where the pan departs
    # Without a pan, or without the factor, the predictor's variance as it is.
    _, no_pan = ConsistentPredictor(_Offset(truth), pan_variance_scale=3.0)(observed, None)
    _, no_factor = ConsistentPredictor(_Offset(truth))(observed, pan)
    assert torch.equal(no_pan, torch.full_like(no_pan, 4e-6)) and torch.equal(no_pan, no_factor)
    with pytest.raises(ValueError, match="pan_variance_scale"):
        ConsistentPredictor(_Offset(truth), pan_variance_scale=-1.0)


def test_the_band_factors_multiply_the_whole_variance() -> None:
    """The per-band factors apply after the level and pan terms, with and without steps; the
    mean is untouched by them."""
    truth = torch.from_numpy(_smooth_image(13, shape=(6, 90, 90)))[None]
    observed = landsat_view(truth)
    pan30 = 0.4 * observed[:, :1] + 0.6 * observed[:, 1:2]
    pan = pan30.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    pan[..., 10:20, 10:20] += 0.02
    factors = (0.5, 1.0, 1.0, 2.0, 3.0, 4.0)
    # The networks off the input's level by 0.003 to 0.008 per band: a level term of its own.
    offset = torch.tensor([0.003, -0.004, 0.005, -0.006, 0.007, 0.008],
                          dtype=truth.dtype)[None, :, None, None]
    for steps in (2, 0):
        plain = ConsistentPredictor(_Offset(truth + offset), steps=steps,
                                    level_variance_scale=2.0, pan_variance_scale=3.0)
        banded = ConsistentPredictor(_Offset(truth + offset), steps=steps,
                                     level_variance_scale=2.0, pan_variance_scale=3.0,
                                     band_variance_factors=factors)
        (mean, variance), (banded_mean, banded_variance) = (plain(observed, pan),
                                                            banded(observed, pan))
        assert torch.equal(mean, banded_mean)
        # The predictor's variance plus the level term (here up to 1.3e-4) and the pan term.
        expected = (4e-6 + 2.0 * offset ** 2 + 3.0 * pan_disagreement(observed, pan) ** 2)
        np.testing.assert_allclose(variance.numpy(), expected.numpy(), rtol=1e-5)
        np.testing.assert_allclose(banded_variance.numpy(), variance.numpy()
                                   * np.array(factors)[:, None, None], rtol=1e-6)
    # Alone (no step, no term) they still apply.
    _, alone = ConsistentPredictor(_Offset(truth), steps=0,
                                   band_variance_factors=factors)(observed, pan)
    np.testing.assert_allclose(alone[0, :, 0, 0].numpy(), 4e-6 * np.array(factors), rtol=1e-6)
    with pytest.raises(ValueError, match="band_variance_factors must be > 0"):
        ConsistentPredictor(_Offset(truth), band_variance_factors=(1.0, 0.0))
    with pytest.raises(ValueError, match="2 band_variance_factors for 6 bands"):
        ConsistentPredictor(_Offset(truth), band_variance_factors=(1.0, 2.0))(observed, pan)


def test_the_band_factors_reach_the_wald_sigma_once(monkeypatch) -> None:
    """The Wald benchmark's σ of an ensemble registering band factors is that of the same
    ensemble without them times √c_b, its input-noise term included (applied once)."""
    from s2l8h.evaluate.wald import _predict
    from s2l8h.inference.harmonize import resolve_models
    from s2l8h.models import registry

    members = ("lite2.real-wald3-a", "lite2.real-wald3-b")
    factors = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
    for name, band_factors in (("plain-pair", ()), ("banded-pair", factors)):
        monkeypatch.setitem(registry._ENSEMBLES, name, registry.EnsembleRelease(
            name, members, "", 0.5, 2.0, 1.0, pan_variance_scale=3.0,
            band_variance_factors=band_factors))
    bands = landsat_view(torch.from_numpy(_smooth_image(21, shape=(6, 90, 90)))[None])[0]
    pan = (0.4 * bands[:1] + 0.6 * bands[1:2]).repeat_interleave(2, dim=-2) \
        .repeat_interleave(2, dim=-1)
    noise = [0.001, 0.002, 0.001, 0.003, 0.002, 0.002]  # a noise term of 1e-6 to 1.8e-5
    inputs = (bands.float().numpy(), pan.float().numpy(), noise)
    plain_mean, plain_std, _ = _predict(resolve_models(["plain-pair"]), "auto", *inputs)
    banded_mean, banded_std, _ = _predict(resolve_models(["banded-pair"]), "auto", *inputs)
    np.testing.assert_array_equal(plain_mean, banded_mean)
    np.testing.assert_allclose(banded_std.astype(np.float64) ** 2,
                               np.array(factors)[:, None, None] * plain_std.astype(np.float64)
                               ** 2, rtol=1e-5)


def test_the_level_is_restored_up_to_the_edge_of_the_data() -> None:
    """Next to filled input the residual is not used (the PSF mixes the fill in), but the
    tile's level is still put back there: no band of the networks' level along the edge."""
    truth = torch.from_numpy(_smooth_image(9, shape=(6, 90, 90)))[None]
    observed = landsat_view(truth)
    observed[..., :10, :] = 0.0  # the first ten 30 m rows filled (outside the scene)
    restored = project(truth + 0.01, observed)
    data = (..., slice(30, -9), slice(9, -9))  # from the first 10 m row of data inwards
    assert (restored - truth)[data].abs().max() < 1e-4
    # Filled pixels beyond the bicubic kernel's reach keep the mean as it was.
    assert torch.equal(restored[..., :24, :], (truth + 0.01)[..., :24, :])


def test_filled_input_gets_no_correction_with_the_filter() -> None:
    truth = torch.from_numpy(_smooth_image(7, shape=(6, 150, 150)))[None]
    generator = torch.Generator().manual_seed(3)
    observed = landsat_view(truth) + 0.0005 * torch.randn((1, 6, 50, 50), generator=generator,
                                                          dtype=truth.dtype)
    observed[..., 20:40, 20:40] = 0.0  # filled by the reader (nodata)
    smooth_error = 0.1 * torch.from_numpy(_smooth_image(8, shape=(6, 150, 150), sigma=6.0)
                                          - 0.05)[None]
    smooth_error = smooth_error - smooth_error.mean(dim=(-2, -1), keepdim=True)
    mean = truth + smooth_error
    correction = project(mean, observed) - mean
    # The block and the two pixels around it have no residual, so 10 m pixels inside the
    # block are more than the bicubic kernel's reach from any correction: exactly none.
    assert torch.equal(correction[..., 60:120, 60:120],
                       torch.zeros_like(correction[..., 60:120, 60:120]))
    # Elsewhere the error is still corrected.
    outside = (..., slice(9, 45), slice(9, -9))
    assert ((mean + correction - truth)[outside].pow(2).mean()
            < 0.4 * smooth_error[outside].pow(2).mean())


def test_a_registered_level_factor_reaches_the_predictor_and_the_tags(monkeypatch) -> None:
    from s2l8h.inference.harmonize import build_predictor, resolve_models, sigma_tags
    from s2l8h.models import registry

    members = ("lite2.real-wald3-a", "lite2.real-wald3-b")
    monkeypatch.setitem(registry._ENSEMBLES, "level-pair",
                        registry.EnsembleRelease("level-pair", members, "", 0.5, 0.0, 2.0,
                                                 pan_variance_scale=3.0,
                                                 band_variance_factors=(1, 1, 1, 2, 2, 2)))
    models = resolve_models(["level-pair"])
    for consistency, steps in ((True, 2), (False, 0)):
        predictor = build_predictor(models, consistency=consistency)
        assert isinstance(predictor, ConsistentPredictor)
        assert (predictor.steps, predictor.level_variance_scale,
                predictor.pan_variance_scale) == (steps, 2.0, 3.0)
        tag = json.loads(sigma_tags(predictor, [0.001] * 6)["S2L8H_SIGMA_CALIBRATION"])
        assert tag["level_variance_scale"] == 2.0 and tag["variance_scale"] == 0.5
        assert tag["pan_variance_scale"] == 3.0
        assert predictor.band_variance_factors == (1, 1, 1, 2, 2, 2)
        assert tag["band_variance_factors"] == [1, 1, 1, 2, 2, 2]
    # Factors alone, without the step: still wrapped, so that they apply.
    monkeypatch.setitem(registry._ENSEMBLES, "banded-pair",
                        registry.EnsembleRelease("banded-pair", members, "", 0.5,
                                                 band_variance_factors=(1, 1, 1, 2, 2, 2)))
    banded = build_predictor(resolve_models(["banded-pair"]), consistency=False)
    assert isinstance(banded, ConsistentPredictor) and banded.steps == 0
    assert banded.band_variance_factors == (1, 1, 1, 2, 2, 2)
    # The members one by one: no calibration, and without the step and the input noise
    # filter a bare ensemble (with the filter, a wrapper that only filters the input).
    plain = resolve_models(list(members))
    assert build_predictor(plain).level_variance_scale == 0.0
    assert build_predictor(plain).pan_variance_scale == 0.0
    assert build_predictor(plain).band_variance_factors == ()
    assert not isinstance(build_predictor(plain, consistency=False, filter_input_noise=False),
                          ConsistentPredictor)
    filtering = build_predictor(plain, consistency=False)
    assert isinstance(filtering, ConsistentPredictor)
    assert filtering.steps == 0 and filtering.filter_input
