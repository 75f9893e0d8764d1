"""Tile plans, blending, tiled == whole-image inference, seam error of deep UNets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_model
from s2l8h import create_model
from s2l8h.inference.tiling import axis_weights, plan_axis, plan_tiles, predict_array
from s2l8h.inference.uncertainty import make_predictor


def _inputs(rows: int, cols: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    multispectral = np.stack([0.1 + 0.05 * np.sin(xx / (3 + band) + yy / 5) for band in range(6)])
    multispectral = (multispectral + 0.02 * rng.random(multispectral.shape)).astype(np.float32)
    pan = np.kron(multispectral[:3].mean(axis=0), np.ones((2, 2)))[None].astype(np.float32)
    return multispectral, pan


def _whole(model, multispectral: np.ndarray, pan: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(multispectral)[None], torch.from_numpy(pan)[None])[0].numpy()


def test_plan_axis_covers_aligned_extent() -> None:
    axis = plan_axis(100, 48, 16, alignment=16)
    assert axis.tile == 48 and axis.overlap == 16
    assert axis.starts == (0, 32, 64)
    assert axis.padded == 112  # 100 rounded up to a multiple of 16
    moved = plan_axis(100, 48, 16, alignment=8)
    assert moved.starts == (0, 32, 56)  # the last tile ends at 104, not 112
    assert moved.overlaps(2) == (24, 0) and moved.overlaps(1) == (16, 24)
    assert all(start % 16 == 0 for start in axis.starts)
    shrunk = plan_axis(2000, 344, 24, alignment=4)  # 7 tiles of 308, not 7 of 344
    assert shrunk.tile == 308 and len(shrunk.starts) == 7 and shrunk.padded == 2000
    small = plan_axis(20, 48, 16, alignment=16)
    assert small.starts == (0,) and small.tile == 32
    with pytest.raises(ValueError, match="overlap"):
        plan_axis(100, 32, 32, alignment=16)


def test_blend_weights_partition_of_unity() -> None:
    axis = plan_axis(200, 64, 16, alignment=4)
    total = np.zeros(3 * axis.padded)
    for index, start in enumerate(axis.starts):
        total[3 * start:3 * (start + axis.tile)] += axis_weights(axis, index, 3)
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    first = axis_weights(axis, 0, 3)
    assert first[0] == 1.0 and first[-1] == 0.0  # scene border keeps weight, neighbour side not


@pytest.mark.parametrize(("tile", "overlap"), [(96, 48), (150, 96), (288, 144)])
def test_tiled_equals_whole_image_within_receptive_field(tile: int, overlap: int) -> None:
    model = tiny_model(3)
    predictor = make_predictor([model])
    multispectral, pan = _inputs(52, 60)
    mean, variance = predict_array(predictor, multispectral, pan, tile=tile, overlap=overlap)
    assert variance is None
    assert mean.shape == (6, 156, 180)
    np.testing.assert_allclose(mean, _whole(model, multispectral, pan), atol=1e-5, rtol=0)


def test_tiled_ensemble_equals_whole_image() -> None:
    models = [tiny_model(seed) for seed in (1, 2, 3)]
    predictor = make_predictor(models)
    multispectral, pan = _inputs(40, 40)
    mean, variance = predict_array(predictor, multispectral, pan, tile=60, overlap=48,
                                   batch_size=3)
    outputs = np.stack([_whole(model, multispectral, pan) for model in models])
    np.testing.assert_allclose(mean, outputs.mean(axis=0), atol=1e-5, rtol=0)
    np.testing.assert_allclose(variance, outputs.var(axis=0), atol=1e-6, rtol=0)


def test_column_blocks_give_the_single_pass_result() -> None:
    from s2l8h.inference.tiling import column_blocks

    model = tiny_model(5)
    predictor = make_predictor([model, tiny_model(6)])
    multispectral, pan = _inputs(40, 130)
    plan = plan_tiles(40, 130, 60, 24, predictor.alignment)
    blocks = column_blocks(plan.cols, 3, max_width=100)
    assert len(blocks) > 2
    owned = [column for start, end, _, _ in blocks for column in range(start, end)]
    assert owned == list(range(3 * plan.cols.padded))  # a partition of the columns
    single = predict_array(predictor, multispectral, pan, tile=60, overlap=24)
    blocked = predict_array(predictor, multispectral, pan, tile=60, overlap=24,
                            max_block_width=100)
    for got, want in zip(blocked, single, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-7, rtol=0)


def test_invalid_tiles_are_skipped() -> None:
    predictor = make_predictor([tiny_model(0)])
    multispectral, pan = _inputs(48, 96)
    valid = np.zeros((48, 96), dtype=bool)
    valid[:, :30] = True
    mean, _ = predict_array(predictor, multispectral, pan, tile=96, overlap=24, valid=valid)
    plan = plan_tiles(48, 96, 96, 24, predictor.alignment)
    assert len(plan.cols.starts) > 2
    assert np.isfinite(mean[:, :, :90]).all()
    assert np.isnan(mean[:, :, -48:]).all()  # tiles with no valid input were never run


def test_deep_unet_seam_error_is_bounded_and_falls_with_overlap() -> None:
    """The published 5-level UNet sees farther than any practical overlap, so tiles differ
    from one whole-image pass near their seams; blending must keep that error small."""
    torch.manual_seed(0)
    model = create_model("unet5-upsample").eval()
    for module in model.modules():  # variance-preserving weights: deep levels matter
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            torch.nn.init.zeros_(module.bias)
    predictor = make_predictor([model])
    multispectral, pan = _inputs(96, 96, seed=4)
    whole = _whole(model, multispectral, pan)
    scale = whole.std()
    errors = {}
    for overlap in (0, 48, 96):
        mean, _ = predict_array(predictor, multispectral, pan, tile=144, overlap=overlap)
        errors[overlap] = float(np.sqrt(np.mean((mean - whole) ** 2)) / scale)
    assert errors[0] > errors[48] > errors[96]
    assert errors[96] < 0.1  # relative RMSE at 96 px overlap (measured 0.07)
    assert errors[96] < 0.25 * errors[0]
