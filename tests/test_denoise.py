"""The input noise filter (s2l8h.inference.denoise) and the noise models it stands on
(s2l8h.noise)."""

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

from s2l8h.data.simulate import Degradation, simulate_landsat, write_simulated_scene
from s2l8h.evaluate.benchmark import read_prediction
from s2l8h.inference.checks import estimate_noise
from s2l8h.inference.consistency import ConsistentPredictor, project, shrink_detail
from s2l8h.inference.denoise import (
    BAND_GROUPS,
    MIN_FILTER_PIXELS,
    OLI_NOISE_FLOOR,
    _from_unit_noise,
    _to_unit_noise,
    band_noise_models,
    filter_bands,
    filter_pan,
    noise_models,
    nonlocal_means,
    tile_noise_models,
)
from s2l8h.inference.harmonize import harmonize
from s2l8h.inference.uncertainty import Predictor
from s2l8h.io.grid import warp
from s2l8h.io.sentinel2 import read_sentinel2
from s2l8h.noise import (
    MIN_NOISE_MODEL_SIDE,
    OLI_PAN,
    oli_noise_model,
    oli_noise_std,
    weak_texture_noise,
)

VIRGINIA = Path(__file__).parents[1] / "data" / "s2_l1c_virginia_north"


@pytest.fixture(scope="module")
def landsat():
    """A 120 x 120 px crop of the Virginia scene simulated as Landsat without noise."""
    crop = GeoBox((360, 360), Affine(10, 0, 438730, 0, -10, 4177460), "EPSG:32618")
    reflectance, valid, grid = read_sentinel2(VIRGINIA, grid=crop)
    return simulate_landsat(reflectance, valid, grid, phase=None)


def test_oli_noise_model_is_the_variance_of_oli_noise_std() -> None:
    levels = np.array([0.0, 0.05, 0.2, 0.6])
    for band in (*range(6), OLI_PAN):
        a, b = oli_noise_model(band)
        assert a > 0 and b > 0
        assert np.allclose(a + b * levels, oli_noise_std(levels, band) ** 2, rtol=1e-12)


def test_weak_texture_noise_sees_the_noise_not_the_texture(landsat) -> None:
    """On a real scene's texture (the red band at 30 m, without noise) the weak-texture
    estimate stays well below the wavelet estimate, which counts the texture; with white
    noise added it finds the noise and less than 1.5 x it (texture still adds to the
    calmest patches); with noise that grows with the level it finds the growth; with too few
    pixels it finds nothing."""
    clean = landsat.multispectral[2]
    mask = np.ones(clean.shape, bool)
    offset, slope = weak_texture_noise(clean, mask)
    texture_only = np.sqrt(offset + slope * clean.mean())
    assert texture_only < 0.45 * estimate_noise(clean[None])[0]  # 0.00057 against 0.0017
    rng = np.random.default_rng(5)
    for sigma in (0.001, 0.002):  # found 0.00133 and 0.00229 on this texture
        noisy = clean + rng.normal(0, sigma, clean.shape)
        offset, slope = weak_texture_noise(noisy, mask)
        found = np.sqrt(offset + slope * clean.mean())
        assert 0.9 * sigma < found < 1.5 * sigma
    # σ² = 4e-5 · level: 0.0013 at level 0.04, 0.0028 at 0.2. On pure noise the calmest
    # patches hold about 0.7 of it (measured 0.75 and 0.70); the growth is found.
    image = np.concatenate([np.full((60, 120), 0.04), np.full((60, 120), 0.2)])
    noisy = image + rng.normal(0, 1, image.shape) * np.sqrt(4e-5 * image)
    offset, slope = weak_texture_noise(noisy, np.ones(image.shape, bool))
    found = {level: np.sqrt(offset + slope * level) for level in (0.04, 0.2)}
    for level, sigma in found.items():
        assert 0.6 < sigma / np.sqrt(4e-5 * level) < 0.85
    assert found[0.2] / found[0.04] == pytest.approx(np.sqrt(5), rel=0.15)
    small = np.zeros((120, 120), bool)
    small[:30, :30] = True
    assert weak_texture_noise(noisy, small) == (0.0, 0.0)
    assert weak_texture_noise(noisy[:3, :3], np.ones((3, 3), bool)) == (0.0, 0.0)
    # MIN_NOISE_MODEL_SIDE is the least square side with an estimate.
    side = MIN_NOISE_MODEL_SIDE
    block = rng.normal(0.1, 0.002, (side, side))
    assert weak_texture_noise(block, np.ones_like(block, bool))[0] > 0
    assert weak_texture_noise(block[1:, 1:], np.ones((side - 1, side - 1), bool)) == (0.0, 0.0)


def test_noise_models_never_go_below_the_oli_floor() -> None:
    flat = np.full((6, 60, 60), 0.1)
    mask = np.ones((60, 60), bool)
    models = noise_models(flat, mask, range(6))  # no noise at all: the floor
    for band, (a, b) in enumerate(models):
        floor_a, floor_b = oli_noise_model(band)
        assert (a, b) == pytest.approx((OLI_NOISE_FLOOR * floor_a, OLI_NOISE_FLOOR * floor_b))
    rng = np.random.default_rng(2)
    noisy = flat + rng.normal(0, 0.003, flat.shape)  # 5-9 x OLI's noise: its own estimate
    for band, (a, b) in enumerate(noise_models(noisy, mask, range(6))):
        found = np.sqrt(a + b * 0.1)
        assert found > np.sqrt(OLI_NOISE_FLOOR) * oli_noise_std(np.array(0.1), band)
        assert 0.6 * 0.003 < found < 0.85 * 0.003  # the calmest patches of pure noise


def test_unit_noise_transform_round_trips_and_makes_noise_unit() -> None:
    a, b = oli_noise_model(3)
    levels = np.linspace(0.0, 0.6, 13)
    assert np.abs(_from_unit_noise(_to_unit_noise(levels, a, b), a, b) - levels).max() < 1e-12
    assert np.abs(_from_unit_noise(_to_unit_noise(levels, a, 0.0), a, 0.0) - levels).max() \
        < 1e-12
    rng = np.random.default_rng(3)
    for level in (0.02, 0.3):
        values = level + rng.normal(0, 1, 100_000) * np.sqrt(a + b * level)
        assert np.std(_to_unit_noise(values, a, b)) == pytest.approx(1.0, rel=0.02)


def test_filter_bands_removes_noise_on_flat_ground_and_keeps_edges_and_fills() -> None:
    generator = torch.Generator().manual_seed(11)
    clean = torch.full((1, 7, 60, 60), 0.1)
    clean[:, :6, :, 30:] = 0.3  # a sharp field edge in every band
    noise = 0.002 * torch.randn((1, 7, 60, 60), generator=generator)
    noisy = clean + noise
    noisy[..., 50:, 50:] = 0.0  # filled by the reader in all channels
    filtered = filter_bands(noisy)
    flat = (..., slice(5, 45), slice(3, 26))
    error = (filtered - clean)[:, :6]
    # Flat ground: the noise left is under 0.2 x what came in (measured 0.08).
    assert error[flat].std() < 0.2 * noise[:, :6][flat].std()
    # The edge (a step of 0.2, 100 x the noise) is kept: the columns beside it are not mixed.
    assert (filtered[:, :6, :45, 29] - 0.1).abs().max() < 0.005
    assert (filtered[:, :6, :45, 30] - 0.3).abs().max() < 0.005
    # Filled pixels and the seventh channel stay exactly as they were.
    assert torch.equal(filtered[..., 50:, 50:], noisy[..., 50:, 50:])
    assert torch.equal(filtered[:, 6:], noisy[:, 6:])
    assert filter_bands(noisy.half()).dtype == torch.float16


def test_filter_keeps_real_texture_and_removes_oli_noise_on_it(landsat) -> None:
    """On the real texture of the crop without noise the filter changes each band by under
    0.5 % of its spread (measured 0.07-0.15 %), the pan by under 3 % (measured 1.6 %)."""
    bands = torch.from_numpy(landsat.multispectral[None].astype(np.float32))
    change = (filter_bands(bands) - bands)[0].pow(2).mean(dim=(1, 2)).sqrt()
    assert (change < 0.005 * bands[0].std(dim=(1, 2))).all()
    pan = torch.from_numpy(np.asarray(landsat.pan, dtype=np.float32).reshape(
        1, 1, *np.shape(landsat.pan)[-2:]))
    assert (filter_pan(pan) - pan).pow(2).mean().sqrt() < 0.03 * pan.std()


def test_filter_bands_filters_the_visible_and_the_infrared_bands_apart() -> None:
    generator = torch.Generator().manual_seed(11)
    bands = 0.1 + 0.01 * torch.randn((1, 6, 60, 60), generator=generator)
    other = bands.clone()
    other[:, 3:] = 0.3 + 0.02 * torch.randn((1, 3, 60, 60), generator=generator)
    assert BAND_GROUPS == ((0, 1, 2), (3, 4, 5))
    assert torch.equal(filter_bands(bands)[:, :3], filter_bands(other)[:, :3])
    other = bands.clone()
    other[:, :3] = 0.05 + 0.02 * torch.randn((1, 3, 60, 60), generator=generator)
    assert torch.equal(filter_bands(bands)[:, 3:6], filter_bands(other)[:, 3:6])
    # Within a group the bands are filtered together: a group's weights see all its bands.
    usable = torch.ones((1, 60, 60), dtype=torch.bool)
    by_group = torch.cat([nonlocal_means(bands[:, list(group)], usable, group)
                          for group in BAND_GROUPS], dim=1)
    assert torch.equal(filter_bands(bands), by_group)
    for changed, watched in ((1, 0), (4, 3)):  # a neighbour in the group moves the band
        other = bands.clone()
        other[:, changed] = 0.2 + 0.01 * torch.randn((1, 60, 60), generator=generator)
        assert not torch.equal(filter_bands(other)[:, watched], filter_bands(bands)[:, watched])
    joint = nonlocal_means(bands, usable, range(6))
    assert not torch.equal(joint, filter_bands(bands))


def test_filter_pan_removes_noise_on_flat_ground_and_keeps_edges_and_fills() -> None:
    generator = torch.Generator().manual_seed(12)
    clean = torch.full((2, 1, 120, 120), 0.1)
    clean[..., 60:] = 0.3  # a sharp edge
    noise = 0.002 * torch.randn(clean.shape, generator=generator)
    noisy = clean + noise
    noisy[1, :, 100:, 100:] = 0.0  # filled by the reader
    filtered = filter_pan(noisy)
    flat = (..., slice(10, 90), slice(5, 55))
    assert (filtered - clean)[flat].std() < 0.4 * noise[flat].std()
    assert (filtered[..., :90, 59] - 0.1).abs().max() < 0.005
    assert (filtered[..., :90, 60] - 0.3).abs().max() < 0.005
    assert torch.equal(filtered[1, :, 100:, 100:], noisy[1, :, 100:, 100:])
    # Each tile against its own noise: a clean tile beside a noisy one is left as it is, and a
    # textured one beside it is filtered as it would be alone (not with the noisy tile's
    # noise, which would flatten its texture).
    pair = torch.cat([clean[:1], noisy[:1]])
    assert (filter_pan(pair)[0] - clean[0]).abs().max() < 1e-6
    textured = clean[:1] + 0.001 * torch.randn(clean[:1].shape, generator=generator).cumsum(-1)
    pair = torch.cat([textured, noisy[:1]])
    alone = filter_pan(textured)
    assert torch.equal(filter_pan(pair)[0], alone[0])
    # A tile with fewer than MIN_FILTER_PIXELS pixels with data is left as it is; one with
    # that many is filtered.
    sparse = torch.zeros_like(noisy[:1])
    sparse[..., 10:19, 10:17] = noisy[:1, :, 10:19, 10:17]  # 63 pixels
    assert MIN_FILTER_PIXELS == 64 and torch.equal(filter_pan(sparse), sparse)
    sparse = torch.zeros_like(noisy[:1])
    sparse[..., 10:18, 10:18] = noisy[:1, :, 10:18, 10:18]  # 64 pixels
    assert not torch.equal(filter_pan(sparse), sparse)


class _Recording(Predictor):
    """Returns the bands it is given, upsampled, and remembers its inputs."""

    models: tuple = ()
    method = "head"
    gives_variance = True

    def __call__(self, multispectral, pan):
        self.seen = (multispectral, pan)
        mean = torch.nn.functional.interpolate(multispectral[:, :6], scale_factor=3,
                                               mode="nearest")
        return mean, torch.ones_like(mean)

    def to(self, device):
        return self


def test_consistent_predictor_feeds_and_checks_against_the_filtered_input() -> None:
    from s2l8h.inference.consistency import pan_disagreement

    generator = torch.Generator().manual_seed(5)
    bands = 0.1 + 0.002 * torch.randn((1, 6, 60, 60), generator=generator)
    pan = 0.1 + 0.002 * torch.randn((1, 1, 120, 120), generator=generator)
    inner = _Recording()
    predictor = ConsistentPredictor(inner, steps=0, filter_input=True)
    shrunk, variance = predictor(bands, pan)
    assert torch.equal(inner.seen[0], filter_bands(bands))
    assert torch.equal(inner.seen[1], filter_pan(pan))
    mean = inner(filter_bands(bands), None)[0]  # what the networks gave
    # Without consistency steps, the filter's last step alone: the detail shrunk.
    models, filled = band_noise_models(bands), torch.zeros((1, 1, 60, 60), dtype=torch.bool)
    assert torch.allclose(shrunk, shrink_detail(mean, models, filled), atol=1e-7)
    assert not torch.allclose(shrunk, mean, atol=1e-5)
    # Filled input (all six bands 0) and the two pixels around it: the detail stays.
    holed = bands.clone()
    holed[..., 20:30, 20:30] = 0
    holed_shrunk = predictor(holed, pan)[0]
    holed_mean = inner(filter_bands(holed), None)[0]
    filled_30m = (holed == 0).all(dim=1, keepdim=True)
    assert torch.allclose(holed_shrunk, shrink_detail(holed_mean, band_noise_models(holed),
                                                      filled_30m), atol=1e-7)
    assert torch.equal(holed_shrunk[..., 54:96, 54:96], holed_mean[..., 54:96, 54:96])
    assert not torch.allclose(holed_shrunk[..., 54:96, 54:96],
                              shrink_detail(holed_mean, band_noise_models(holed),
                                            torch.zeros_like(filled_30m))[..., 54:96, 54:96])
    assert predictor(bands, None) is not None and inner.seen[1] is None  # no pan: none
    assert inner.seen[0].std() < 0.3 * bands.std()
    assert predictor.gives_variance and torch.equal(variance, torch.ones_like(mean))
    # The residual is taken against the filtered bands the networks saw, so the noise the
    # filter took out is not put back; the pan term compares the bands and pan as they are.
    consistent = ConsistentPredictor(_Recording(), steps=1, denoise=False, filter_input=True,
                                     pan_variance_scale=2.0)
    corrected, variance = consistent(bands, pan)
    expected = shrink_detail(project(mean, filter_bands(bands), denoise=False), models, filled)
    assert torch.allclose(corrected, expected, atol=1e-7)
    assert not torch.allclose(corrected, shrink_detail(project(mean, bands, denoise=False),
                                                       models, filled), atol=1e-5)
    raw_term = 2.0 * pan_disagreement(bands, pan, 3) ** 2
    assert torch.allclose(variance, 1 + raw_term, atol=1e-7)
    assert not torch.allclose(raw_term, 2.0 * pan_disagreement(filter_bands(bands),
                                                               filter_pan(pan), 3) ** 2,
                              atol=1e-7)
    # Unfiltered: the networks see the input as it is and the residual is taken against it.
    unfiltered = ConsistentPredictor(_Recording(), steps=1, denoise=False)
    plain = torch.nn.functional.interpolate(bands, scale_factor=3, mode="nearest")
    assert torch.allclose(unfiltered(bands, pan)[0], project(plain, bands, denoise=False),
                          atol=1e-7)


def test_harmonize_filters_input_noise_by_default_and_lowers_the_noise_gain(tmp_path: Path
                                                                            ) -> None:
    from rasterio.enums import Resampling

    from s2l8h.evaluate.metrics import flat_pixels, noise_gain
    from s2l8h.inference.harmonize import build_predictor, resolve_models

    models = resolve_models(["lite2.real-wald-a"])
    built = build_predictor(models)
    assert isinstance(built, ConsistentPredictor) and built.steps == 2 and built.filter_input
    assert not build_predictor(models, filter_input_noise=False).filter_input
    unprojected = build_predictor(models, consistency=False)
    assert isinstance(unprojected, ConsistentPredictor)
    assert unprojected.steps == 0 and unprojected.filter_input
    crop = GeoBox((180, 180), Affine(10, 0, 438730, 0, -10, 4177460), "EPSG:32618")
    reflectance, valid, grid = read_sentinel2(VIRGINIA, grid=crop)
    simulations = {noise: simulate_landsat(reflectance, valid, grid, seed=0,
                                           degradation=Degradation(noise_std=noise))
                   for noise in (0.0, 0.002)}
    predictions = {}
    for noise, simulation in simulations.items():
        scene, target = write_simulated_scene(simulation, tmp_path / f"sim-{noise}")
        for flag in (True, False):
            path = tmp_path / f"out-{noise}-{flag}.tif"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                options = {} if flag else {"filter_input_noise": False}
                harmonize(scene, path, models=["lite2.real-wald-a"], like=target,
                          progress=False, mask_flags=(), dtype="float32", **options)
            with rasterio.open(path) as dataset:
                assert json.loads(dataset.tags()["S2L8H_OPTIONS"])["filter_input_noise"] is flag
            predictions[noise, flag] = read_prediction(path)[0]
    clean, noisy = simulations[0.0], simulations[0.002]
    input_noise = warp(noisy.multispectral - clean.multispectral, noisy.lowres_grid,
                       noisy.target_grid, Resampling.nearest)
    flat = flat_pixels(clean.target, clean.target_valid)
    gain = {flag: np.array(noise_gain(predictions[0.002, flag] - predictions[0.0, flag],
                                      input_noise, flat)) for flag in (True, False)}
    # Measured (member A of lite2.real-wald, white noise of 0.002 on bands and pan, this
    # farmland crop): 0.53 / 0.65 / 0.86 / 1.81 / 1.40 / 1.22 with the filter, 1.12 / 1.13 /
    # 1.23 / 2.01 / 1.68 / 1.47 without. Lower in every band; in NIR and SWIR, whose field
    # texture keeps the filter from averaging, still above 1 here.
    assert (gain[True] < 0.95 * gain[False]).all(), gain
    assert gain[True].mean() < 0.8 * gain[False].mean() and gain[True][:3].max() < 0.9, gain


def _per_patch_noise(image: np.ndarray, valid: np.ndarray, patch: int = 5, share: float = 0.2,
                     levels: int = 4) -> tuple[float, float]:
    """:func:`weak_texture_noise` written patch by patch, as the reference."""
    from numpy.lib.stride_tricks import sliding_window_view

    size = patch * patch
    patches = sliding_window_view(image, (patch, patch)).reshape(-1, size)
    patches = patches[sliding_window_view(valid, (patch, patch)).reshape(-1, size).all(axis=1)]
    levels = min(levels, int(len(patches) * share) // (10 * size))
    square = patches.reshape(-1, patch, patch)
    energy = (np.diff(square, axis=1) ** 2).sum(axis=(1, 2)) \
        + (np.diff(square, axis=2) ** 2).sum(axis=(1, 2))
    means, variances = [], []
    for members in np.array_split(np.argsort(patches.mean(axis=1), kind="stable"), levels):
        calm = patches[members][energy[members] <= np.quantile(energy[members], share)]
        means.append(calm.mean())
        variances.append(max(np.linalg.eigvalsh(np.cov(calm.T))[0], 0.0)
                         / (1 - np.sqrt(size / len(calm))) ** 2)
    design = np.stack([np.ones(levels), np.asarray(means)], axis=1)
    return tuple(np.linalg.lstsq(design, np.asarray(variances), rcond=None)[0])


def test_weak_texture_noise_equals_the_patch_by_patch_estimate_and_ignores_invalid_pixels(
) -> None:
    rng = np.random.default_rng(7)
    level = 0.05 + np.linspace(0, 0.3, 160) + np.cumsum(rng.normal(0, 0.001, (150, 160)), axis=1)
    image = level + rng.normal(0, 1, level.shape) * np.sqrt(4e-6 + 2e-5 * level)
    valid = np.ones(image.shape, bool)
    valid[:40, :60] = False
    expected = _per_patch_noise(image, valid)
    assert expected[0] > 0 and expected[1] > 0  # the growth is there, so both are returned
    assert weak_texture_noise(image, valid) == pytest.approx(expected, rel=1e-9)
    for fill in (np.nan, -9999.0, 1e10):  # what lies outside valid counts for nothing
        spoiled = np.where(valid, image, fill)
        assert weak_texture_noise(spoiled, valid) == pytest.approx(expected, rel=1e-9)


def test_noise_models_floor_each_coefficient_on_its_own() -> None:
    """Noise that grows with the level from 0 (σ² = 4e-5 · level, far above OLI's): its own
    b, and OLI's floor for a, which the estimate puts at 0."""
    rng = np.random.default_rng(4)
    image = np.concatenate([np.full((60, 120), 0.04), np.full((60, 120), 0.2)])
    noisy = image + rng.normal(0, 1, image.shape) * np.sqrt(4e-5 * image)
    mask = np.ones(image.shape, bool)
    assert weak_texture_noise(noisy, mask)[0] == 0.0
    ((a, b),) = noise_models(noisy[None], mask, [3])
    floor_a, floor_b = oli_noise_model(3)
    assert a == pytest.approx(OLI_NOISE_FLOOR * floor_a)
    assert b == weak_texture_noise(noisy, mask)[1] > 5 * OLI_NOISE_FLOOR * floor_b


def test_filter_keeps_reflectance_below_the_noise_models_domain() -> None:
    """Pixels so far below zero that the noise model gives them no variance are left as they
    are (the transform would clip them); the rest of the tile is filtered."""
    generator = torch.Generator().manual_seed(9)
    bands = torch.full((1, 6, 60, 60), 0.05, dtype=torch.float64)
    bands[..., 40:, :] = 0.3
    bands[..., 10:20, 10:20] = -0.2  # below -a/b of the floor in every band
    for band in range(6):
        a, b = oli_noise_model(band)
        assert OLI_NOISE_FLOOR * (a - 0.2 * b) < 0
    noisy = bands + 0.0005 * torch.randn(bands.shape, generator=generator, dtype=torch.float64)
    noisy[..., 10:20, 10:20] = -0.2
    filtered = filter_bands(noisy)
    assert torch.equal(filtered[..., 10:20, 10:20], noisy[..., 10:20, 10:20])
    assert (filtered - bands)[..., 25:38, 25:55].std() < 0.5 * 0.0005


def test_shrink_detail_takes_out_noise_sized_detail_and_keeps_texture_and_edges() -> None:
    generator = torch.Generator().manual_seed(3)
    columns = torch.arange(180, dtype=torch.float32)
    texture = 0.02 * torch.sin(2 * torch.pi * columns / 7)  # a 70 m pattern, 10 m pixels
    mean = torch.full((1, 6, 180, 180), 0.1)
    mean[..., :90] += texture[:90]  # textured left half
    mean[..., 60:120, :] += 0.05 * (columns > 150)  # an edge on the flat right half
    noise_std = 0.0005
    mean = mean + noise_std * torch.randn(mean.shape, generator=generator)
    models = torch.tensor([[[noise_std ** 2, 0.0]] * 6], dtype=torch.float64)
    filled = torch.zeros((1, 1, 60, 60), dtype=torch.bool)
    shrunk = shrink_detail(mean, models, filled)
    change = shrunk - mean
    # Flat ground: most of the noise goes (it is all detail finer than 30 m or near it).
    flat = (slice(None), slice(None), slice(10, 50), slice(100, 140))
    assert change[flat].std() > 0.5 * noise_std
    assert (shrunk[flat] - 0.1).std() < 0.4 * (mean[flat] - 0.1).std()
    # Texture 40 x the noise and the edge are kept: what moves is a fraction of the noise.
    textured = (slice(None), slice(None), slice(10, 170), slice(10, 80))
    assert change[textured].abs().max() < 0.25 * noise_std
    edge = (slice(None), slice(None), slice(70, 110), slice(145, 156))
    assert change[edge].abs().max() < 0.1 * 0.05
    # The level is the input's: the mean over the flat part does not move.
    assert abs(float(change[flat].mean())) < 0.05 * noise_std
    # A tile without a noise model, and pixels near filled input, stay as they are.
    assert torch.equal(shrink_detail(mean, torch.zeros_like(models), filled), mean)
    filled[..., 30:, 30:] = True
    near = shrink_detail(mean, models, filled)
    assert torch.equal(near[..., 84:, 84:], mean[..., 84:, 84:])
    assert torch.equal(near[..., :80, :80], shrunk[..., :80, :80])
    # A NaN in the output stays where it is; its neighbours keep their value.
    holed = mean.clone()
    holed[..., 20, 120] = torch.nan
    out = shrink_detail(holed, models, torch.zeros_like(filled))
    assert out[..., 20, 120].isnan().all() and out.isnan().sum() == 6
    around = (..., slice(19, 22), slice(119, 122))
    assert torch.equal(out[around].nan_to_num(), holed[around].nan_to_num())


def test_shrink_detail_uses_each_tiles_and_bands_own_noise_model() -> None:
    generator = torch.Generator().manual_seed(6)
    noise_std = 0.0005
    mean = 0.1 + noise_std * torch.randn((2, 6, 60, 60), generator=generator)
    # Tile 0: a model for blue, green and red only; tile 1: for NIR, SWIR1 and SWIR2 only,
    # as the signal-dependent part b ρ (ρ = 0.1) of the same variance.
    models = torch.zeros((2, 6, 2), dtype=torch.float64)
    models[0, :3, 0] = noise_std ** 2
    models[1, 3:, 1] = noise_std ** 2 / 0.1
    shrunk = shrink_detail(mean, models, torch.zeros((2, 1, 20, 20), dtype=torch.bool))
    spread = (shrunk - 0.1).flatten(-2).std(dim=-1) / (mean - 0.1).flatten(-2).std(dim=-1)
    assert (spread[0, :3] < 0.5).all() and (spread[1, 3:] < 0.5).all(), spread
    assert torch.equal(shrunk[0, 3:], mean[0, 3:]) and torch.equal(shrunk[1, :3], mean[1, :3])
    # The signal-dependent model shrinks as the constant one of the same variance does.
    constant = models.clone()
    constant[1, 3:] = torch.tensor([noise_std ** 2, 0.0], dtype=torch.float64)
    same = shrink_detail(mean, constant, torch.zeros((2, 1, 20, 20), dtype=torch.bool))
    assert (shrunk[1, 3:] - same[1, 3:]).abs().max() < 0.1 * noise_std


def test_tile_noise_models_are_what_the_filter_uses() -> None:
    generator = torch.Generator().manual_seed(4)
    bands = 0.1 + 0.002 * torch.randn((2, 6, 40, 40), generator=generator)
    bands[1, :, 8:] = 0  # 320 usable pixels
    bands[1, :, :, 8:] = 0  # 64: still filtered
    models = band_noise_models(bands)
    assert models.shape == (2, 6, 2)
    usable = ~(bands == 0).all(dim=1)
    for tile in range(2):
        expected = noise_models(bands[tile].double().numpy(), usable[tile].numpy(), range(6))
        assert np.array_equal(models[tile].numpy(), np.asarray(expected))
    assert torch.equal(filter_bands(bands, models), filter_bands(bands))
    # Models given are the ones used: a 16 x larger noise variance filters harder.
    harder = filter_bands(bands, 16 * models)
    assert harder[0].std() < 0.9 * filter_bands(bands)[0].std()
    sparse = bands.clone()
    sparse[1, :, 7] = 0  # 56 usable pixels: no model, nothing filtered
    assert torch.equal(tile_noise_models(sparse[1:, :6], ~(sparse[1:, :6] == 0).all(dim=1),
                                         range(6)), torch.zeros((1, 6, 2), dtype=torch.float64))
