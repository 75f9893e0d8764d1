"""The harmonize job end to end: grids, masks, encodings, provenance, bad inputs, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from scipy import ndimage
from typer.testing import CliRunner

from conftest import (
    EPSG,
    FLORIDA,
    ORIGIN,
    PRODUCT,
    Scene,
    make_scene,
    tiny_model,
    write_raster,
)
from s2l8h import harmonize
from s2l8h.cli import app
from s2l8h.io.cog import decode_reflectance, encode_reflectance
from s2l8h.io.errors import InputError, OutputError

runner = CliRunner()


def _read(path: Path) -> tuple[np.ndarray, rasterio.Affine, object, list[str]]:
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.transform, dataset.crs, list(dataset.descriptions)


def test_default_grid_is_sentinel2_aligned_and_covers_valid_data(tmp_path: Path,
                                                                 scene: Scene) -> None:
    result = harmonize(scene.folder, tmp_path / "out.tif", models=[tiny_model(0)],
                       progress=False)
    data, transform, crs, names = _read(result.path)
    assert crs.to_epsg() == EPSG
    assert (transform.a, transform.e) == (10.0, -10.0)
    assert transform.c % 10 == 0 and transform.f % 10 == 0
    left, _bottom, _right, top = scene.bounds  # Landsat edges at 15 m modulo 30 m
    assert transform.c == left - 5 and transform.f == top + 5
    assert data.shape == (7, 3 * scene.rows + 1, 3 * scene.cols + 1)
    assert names == ["B02", "B03", "B04", "B8A", "B11", "B12", "mask"]
    with rasterio.open(result.path) as dataset:
        assert dataset.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert dataset.nodata == 0
        assert dataset.scales[0] == pytest.approx(1e-4)
        assert dataset.offsets[0] == pytest.approx(-0.1)
        tags = dataset.tags()
    assert json.loads(tags["S2L8H_MODELS"]) == ["unet5-upsample"]
    assert tags["S2L8H_UNCERTAINTY"] == "none"
    assert tags["S2L8H_SCENE"] == PRODUCT
    # Inputs by file name and content hash, never by local folder (issue 13).
    digest = hashlib.sha256(scene.band_path(2).read_bytes()).hexdigest()
    inputs = json.loads(tags["S2L8H_INPUTS"])
    assert f"{scene.band_path(2).name} sha256:{digest}" in inputs
    assert not any(str(scene.folder) in entry for entry in inputs)


def test_output_matches_direct_model_on_landsat_aligned_grid(tmp_path: Path,
                                                             scene: Scene) -> None:
    """On a grid that coincides with the Landsat grid ×3, the warp is the identity and the
    written values equal one forward pass of the model on the scene's reflectance (without
    the consistency step, which tests/test_consistency.py measures)."""
    model = tiny_model(2)
    left, _bottom, _right, top = scene.bounds
    like = write_raster(tmp_path / "like.tif", np.zeros((3 * scene.rows, 3 * scene.cols),
                                                        dtype=np.uint8),
                        Affine(10, 0, left, 0, -10, top))
    result = harmonize(scene.folder, tmp_path / "out.tif", models=[model], like=like,
                       dtype="float32", tile=96, overlap=48, progress=False, consistency=False,
                       filter_input_noise=False)
    data, transform, _, _ = _read(result.path)
    assert transform == Affine(10, 0, left, 0, -10, top)
    reflectance = scene.digital_numbers.astype(np.float32) * np.float32(0.0000275) - \
        np.float32(0.2)
    pan = scene.pan.astype(np.float32) * np.float32(2e-5) - np.float32(0.1)
    with torch.no_grad():
        expected = model(torch.from_numpy(reflectance)[None],
                         torch.from_numpy(pan)[None, None])[0].numpy()
    np.testing.assert_allclose(data[:6], expected, atol=1e-5, rtol=0)


def test_column_blocks_write_the_same_file(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "wide", rows=30, cols=90, fill_rows=3,
                       cloud_box=(10, 20, 40, 60))
    models = [tiny_model(1, variance_head=True)]
    whole = harmonize(scene.folder, tmp_path / "whole.tif", models=models, tile=96,
                      overlap=24, progress=False)
    blocked = harmonize(scene.folder, tmp_path / "blocked.tif", models=models, tile=96,
                        overlap=24, block_width=120, progress=False)
    np.testing.assert_array_equal(_read(whole.path)[0], _read(blocked.path)[0])


def test_like_crs_bounds_resolution_grids(tmp_path: Path, scene: Scene) -> None:
    like = write_raster(tmp_path / "ref.tif", np.zeros((30, 40), dtype=np.uint8),
                        Affine(10, 0, 694100, 0, -10, 5699900))
    out = harmonize(scene.folder, tmp_path / "like.tif", models=[tiny_model()], like=like,
                    progress=False)
    _, transform, crs, _ = _read(out.path)
    with rasterio.open(out.path) as dataset:
        assert (dataset.height, dataset.width) == (30, 40)
    assert transform == Affine(10, 0, 694100, 0, -10, 5699900) and crs.to_epsg() == EPSG

    bounds = (694103.0, 5699203.0, 694497.0, 5699601.0)
    out = harmonize(scene.folder, tmp_path / "bounds.tif", models=[tiny_model()],
                    bounds=bounds, resolution=20, progress=False)
    data, transform, _, _ = _read(out.path)
    assert transform == Affine(20, 0, 694100, 0, -20, 5699620)
    assert data.shape[1:] == (21, 20)
    assert (data[6] == 1).all()

    out = harmonize(scene.folder, tmp_path / "utm31.tif", models=[tiny_model()],
                    crs="EPSG:32631", progress=False)
    _, transform, crs, _ = _read(out.path)
    assert crs.to_epsg() == 32631
    assert transform.a == 10 and transform.c % 10 == 0 and transform.f % 10 == 0


def test_quality_fill_and_cloud_become_nodata_and_mask(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "cloudy", fill_rows=6, cloud_box=(20, 30, 10, 20))
    left, _bottom, _right, top = scene.bounds
    like = write_raster(tmp_path / "like.tif", np.zeros((3 * scene.rows, 3 * scene.cols),
                                                        dtype=np.uint8),
                        Affine(10, 0, left, 0, -10, top))
    result = harmonize(scene.folder, tmp_path / "out.tif", models=[tiny_model()], like=like,
                       progress=False)
    data, *_ = _read(result.path)
    mask = data[6]
    assert (mask[: 3 * 6] == 0).all() and (data[:, : 3 * 6] == 0).all()  # fill: nodata
    cloud = mask[3 * 20:3 * 30, 3 * 10:3 * 20]
    assert (cloud == 2).all() and (data[:6, 3 * 20:3 * 30, 3 * 10:3 * 20] == 0).all()
    assert (mask[3 * 32:, :] == 1).all() and (data[:6, 3 * 32:] > 0).all()
    kept = harmonize(scene.folder, tmp_path / "kept.tif", models=[tiny_model()], like=like,
                     keep_flagged=True, progress=False)
    kept_data, *_ = _read(kept.path)
    assert (kept_data[6] == mask).all()
    assert (kept_data[:6, 3 * 20:3 * 30, 3 * 10:3 * 20] > 0).all()
    unmasked = harmonize(scene.folder, tmp_path / "noflags.tif", models=[tiny_model()],
                         like=like, mask_flags=(), progress=False)
    assert (_read(unmasked.path)[0][6][3 * 20:3 * 30, 3 * 10:3 * 20] == 1).all()
    # Without its quality band the cloud passes through as data: said, not silent (and not
    # said when no flag was asked for).
    files = [path for path in scene.folder.iterdir() if "QA_PIXEL" not in path.name]
    said = {}
    for flags in (("cloud", "shadow"), ()):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bare = harmonize(files, tmp_path / f"noqa{len(flags)}.tif", models=[tiny_model()],
                             like=like, mask_flags=flags, progress=False)
        assert (_read(bare.path)[0][6][3 * 20:3 * 30, 3 * 10:3 * 20] == 1).all()
        said[flags] = [str(w.message) for w in caught if "no quality band" in str(w.message)]
    assert said[()] == []
    assert len(said[("cloud", "shadow")]) == 1
    assert "no quality band (QA_PIXEL or BQA) among the inputs: nothing is flagged, so " \
        "cloud, shadow pass through as data" in said[("cloud", "shadow")][0]


def test_a_coarser_output_has_values_exactly_where_its_mask_says(tmp_path: Path) -> None:
    """Onto a 20 m grid the data are averaged and the mask is taken by nearest neighbour: at
    the fill's and the cloud's edges an average used to give pixels values that the mask
    calls nodata or flagged. Values now sit exactly where the mask is valid (and flagged,
    with keep_flagged), σ bands included."""
    scene = make_scene(tmp_path / "cloudy", fill_rows=6, cloud_box=(20, 30, 10, 20))
    for keep_flagged, dtype in ((False, "uint16"), (True, "float32")):
        result = harmonize(scene.folder, tmp_path / f"{dtype}.tif", models=[tiny_model()],
                           resolution=20, keep_flagged=keep_flagged, dtype=dtype,
                           progress=False)
        with rasterio.open(result.path) as dataset:
            data = dataset.read()
            assert dataset.res == (20, 20)
        mask = data[-1]
        has_values = np.isfinite(data[:-1]).all(axis=0) & (data[:-1] != 0).all(axis=0)
        counts = {value: int((mask == value).sum()) for value in (0, 1, 2)}
        assert counts[0] > 0 and counts[1] > 0 and counts[2] > 0
        expected = (mask == 1) | ((mask == 2) & keep_flagged)
        np.testing.assert_array_equal(has_values, expected)


def test_qa_radsat_saturation_is_an_optional_flag(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "saturated")
    radsat = np.zeros((scene.rows, scene.cols), dtype=np.uint16)
    radsat[5:10, 5:10] = 1 << 3  # band 4 (red) saturated
    radsat[20:25, 20:25] = 1 << 9  # band 10 (thermal): not one of the six bands used
    with rasterio.open(scene.band_path(2)) as band:
        transform = band.transform
    write_raster(scene.folder / f"{PRODUCT}_QA_RADSAT.TIF", radsat, transform)
    left, _bottom, _right, top = scene.bounds
    like = write_raster(tmp_path / "like.tif", np.zeros((3 * scene.rows, 3 * scene.cols),
                                                        dtype=np.uint8),
                        Affine(10, 0, left, 0, -10, top))
    flagged = harmonize(scene.folder, tmp_path / "flagged.tif", models=[tiny_model()],
                        like=like, mask_flags=("cloud", "saturated"), progress=False)
    mask = _read(flagged.path)[0][6]
    assert (mask[15:30, 15:30] == 2).all() and (mask == 2).sum() == 15 * 15
    default = harmonize(scene.folder, tmp_path / "default.tif", models=[tiny_model()],
                        like=like, progress=False)
    assert (_read(default.path)[0][6] == 1).all()


def test_uint16_encoding_round_trips() -> None:
    reflectance = np.array([-0.05, 0.0, 0.12345, 0.5, 1.2], dtype=np.float32)
    valid = np.ones(5, dtype=bool)
    decoded = decode_reflectance(encode_reflectance(reflectance, valid))
    np.testing.assert_allclose(decoded, reflectance, atol=0.5e-4)
    assert encode_reflectance(reflectance, ~valid).tolist() == [0] * 5


def test_uint16_and_float32_outputs_agree(tmp_path: Path, tiny_ensemble, scene: Scene) -> None:
    left, _bottom, _right, top = scene.bounds
    aligned = write_raster(tmp_path / "like.tif", np.zeros((3 * scene.rows, 3 * scene.cols),
                                                           dtype=np.uint8),
                           Affine(10, 0, left, 0, -10, top))
    for like, tolerance in ((aligned, 0.5e-4), (None, 1.5e-4)):
        # On the Landsat grid x3 only the encoding differs (half a DN); on the default
        # Sentinel-2 grid the 10 m rows are warped (cubic) after the encoding: a DN more.
        common = dict(models=[str(p) for p in tiny_ensemble], progress=False, like=like,
                      overwrite=True)
        as_uint16 = harmonize(scene.folder, tmp_path / "u16.tif", **common).open()
        as_float = harmonize(scene.folder, tmp_path / "f32.tif", dtype="float32",
                             **common).open()
        assert list(as_uint16.attrs["long_name"])[6:12] == [
            "B02_std", "B03_std", "B04_std", "B8A_std", "B11_std", "B12_std"]
        reference = as_float.values[:12]
        encodable = (reference >= -0.0999) & (reference <= 6.4)  # uint16 range, offset -0.1
        # Untrained models give values the encoding clips; the warp spreads that 2 pixels.
        encodable = ndimage.minimum_filter(encodable, size=(1, 5, 5))
        difference = np.abs(as_uint16.values[:12] - reference)[encodable]
        assert encodable.mean() > 0.4
        assert np.nanmax(difference) <= tolerance + 1e-6
        if like is not None:
            clipped = (reference < -0.0999) & np.isfinite(reference)
            np.testing.assert_allclose(as_uint16.values[:12][clipped], -0.0999, atol=1e-6)
        assert float(np.nanmin(as_float.values[6:12])) >= 0
        # The mask's 0 (no data) is NaN as every band's nodata, in both; filled, its classes.
        for image in (as_uint16, as_float):
            mask = image.sel(band="mask").fillna(0).values
            assert set(np.unique(mask)) <= {0.0, 1.0, 2.0}
            np.testing.assert_array_equal(mask == 0, np.isnan(image.values[0]) & (mask != 2))


def test_ensemble_std_matches_members(tmp_path: Path, scene: Scene) -> None:
    models = [tiny_model(seed) for seed in (5, 6)]
    left, _bottom, _right, top = scene.bounds
    like = write_raster(tmp_path / "like.tif", np.zeros((3 * scene.rows, 3 * scene.cols),
                                                        dtype=np.uint8),
                        Affine(10, 0, left, 0, -10, top))
    out = harmonize(scene.folder, tmp_path / "e.tif", models=models, like=like,
                    dtype="float32", progress=False, consistency=False,
                    filter_input_noise=False)
    data, *_ = _read(out.path)
    reflectance = torch.from_numpy(scene.digital_numbers.astype(np.float32) * 0.0000275 - 0.2)
    pan = torch.from_numpy(scene.pan.astype(np.float32) * 2e-5 - 0.1)[None, None]
    with torch.no_grad():
        outputs = torch.stack([m(reflectance[None], pan)[0] for m in models]).numpy()
    np.testing.assert_allclose(data[:6], outputs.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(data[6:12], outputs.std(axis=0), atol=1e-5)


def test_mc_dropout_and_variance_head(tmp_path: Path, scene: Scene) -> None:
    head = tiny_model(0, variance_head=True)
    out = harmonize(scene.folder, tmp_path / "head.tif", models=[head], progress=False)
    assert _read(out.path)[3][6] == "B02_std"
    assert out.uncertainty == "head"
    dropout = tiny_model(0, dropout=0.2)
    first = harmonize(scene.folder, tmp_path / "mc1.tif", models=[dropout],
                      uncertainty="mc-dropout", mc_passes=4, dtype="float32", progress=False)
    second = harmonize(scene.folder, tmp_path / "mc2.tif", models=[dropout],
                       uncertainty="mc-dropout", mc_passes=4, dtype="float32", progress=False)
    a, b = _read(first.path)[0], _read(second.path)[0]
    np.testing.assert_array_equal(a, b)  # seeded
    assert np.nanmean(a[6:12]) > 0
    with pytest.raises(ValueError, match="MC dropout needs a model with dropout"):
        harmonize(scene.folder, tmp_path / "x.tif", models=[tiny_model()],
                  uncertainty="mc-dropout", progress=False)
    assert not (tmp_path / "x.tif").exists()


# ---------------------------------------------------------------- bad inputs ----

def _cli(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, ["harmonize", *args, "-q"])
    return result.exit_code, result.output


def _no_output_left(folder: Path, name: str = "out.tif") -> None:
    assert not (folder / name).exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(f".{name}")]


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _bad(tmp_path: Path, outdir: Path, model: Path, mutate, message: str,
         extra: list[str] | None = None) -> None:
    scene = make_scene(tmp_path / "bad")
    inputs = mutate(scene)
    code, output = _cli([*[str(p) for p in (inputs or [scene.folder])], "-o",
                         str(outdir / "out.tif"), "--model", str(model), *(extra or [])])
    assert code != 0, output
    assert message in output, output
    _no_output_left(outdir)


def test_bad_missing_pan(tmp_path, outdir, tiny_release) -> None:
    def mutate(scene):
        next(scene.folder.glob("*_B8.TIF")).unlink()
    _bad(tmp_path, outdir, tiny_release, mutate, "panchromatic band is missing")


def test_bad_missing_mtl_key(tmp_path, outdir, tiny_release) -> None:
    def mutate(scene):
        for path in scene.folder.glob("*_MTL.json"):
            document = json.loads(path.read_text())
            del document["LANDSAT_METADATA_FILE"]["LEVEL1_RADIOMETRIC_RESCALING"][
                "REFLECTANCE_MULT_BAND_8"]
            path.write_text(json.dumps(document))
    _bad(tmp_path, outdir, tiny_release, mutate, "no MTL with REFLECTANCE_MULT_BAND_8")


def test_bad_wrong_band_count(tmp_path, outdir, tiny_release) -> None:
    def mutate(scene):
        with rasterio.open(scene.band_path(2)) as band:
            transform = band.transform
        stack = write_raster(tmp_path / "stack_SR.tif", scene.digital_numbers[:4], transform)
        return [stack, *scene.folder.glob("*_B8.TIF"), *scene.folder.glob("*L1TP*_MTL.json")]
    _bad(tmp_path, outdir, tiny_release, mutate, "stack_SR.tif: unrecognized raster with 4")


def test_bad_corrupt_tiff(tmp_path, outdir, tiny_release) -> None:
    def mutate(scene):
        path = scene.band_path(4)
        path.write_bytes(path.read_bytes()[:300])
    _bad(tmp_path, outdir, tiny_release, mutate, "_SR_B4.TIF: not a readable raster")


def test_bad_non_overlapping_pan(tmp_path, outdir, tiny_release) -> None:
    def mutate(scene):
        pan = next(scene.folder.glob("*_B8.TIF"))
        write_raster(pan, scene.pan, Affine(15, 0, ORIGIN[0] + 50_000, 0, -15, ORIGIN[1]),
                     nodata=0)
    _bad(tmp_path, outdir, tiny_release, mutate, "_B8.TIF: does not overlap the output grid")


def test_bad_bounds_or_like_outside_the_scene(tmp_path, outdir, tiny_release) -> None:
    """An output grid that misses the scene is the option's error (naming the scene's
    folder and both extents), not a band file's."""
    far = (ORIGIN[0] + 50_000, ORIGIN[1] - 1_000, ORIGIN[0] + 51_000, ORIGIN[1])
    _bad(tmp_path, outdir, tiny_release, lambda scene: None,
         "--bounds 744005,5699015,745005,5700015: outside the scene",
         ["--bounds", ",".join(f"{value:.0f}" for value in far)])
    code, output = _cli([str(tmp_path / "bad"), "-o", str(outdir / "out.tif"), "--model",
                         str(tiny_release), "--bounds", "8.9,51.4,9.0,51.5", "--crs",
                         "EPSG:4326"])
    assert code == 2 and "outside the scene" in output and "in EPSG:4326" in output, output
    assert "look like degrees" not in output
    _no_output_left(outdir)
    # Degrees given without --crs are read in the scene's UTM zone: the error says so.
    code, output = _cli([str(tmp_path / "bad"), "-o", str(outdir / "out.tif"), "--model",
                         str(tiny_release), "--bounds", "8.9,51.4,9.0,51.5"])
    assert code == 2 and "these look like degrees: give --crs EPSG:4326" in output, output
    _no_output_left(outdir)
    like = write_raster(tmp_path / "far.tif", np.zeros((10, 10), dtype=np.uint8),
                        Affine(10, 0, far[0], 0, -10, far[3]))
    code, output = _cli([str(tmp_path / "bad"), "-o", str(outdir / "out.tif"), "--model",
                         str(tiny_release), "--like", str(like)])
    assert code == 2 and f"--like {like}: outside the scene" in output, output
    assert f"in EPSG:{EPSG}" in output and "744005, 5699915, 744105, 5700015" in output
    _no_output_left(outdir)


def test_bad_output_name_like_with_resolution_and_an_input_as_output(tmp_path, outdir,
                                                                     tiny_release) -> None:
    """Another format's name, a --resolution that --like would ignore, and an existing
    input given as the output (it is said to be an input, not merely to exist)."""
    _bad(tmp_path, outdir, tiny_release, lambda scene: None,
         "out.png: harmonize writes a Cloud-Optimized GeoTIFF; name it .tif, not .png",
         ["-o", str(outdir / "out.png")])  # the last -o is the one taken
    assert not list(outdir.iterdir())
    like = write_raster(tmp_path / "like.tif", np.zeros((10, 10), dtype=np.uint8),
                        Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]))
    _bad(tmp_path, outdir, tiny_release, lambda scene: None,
         "--like cannot be combined with --crs/--bounds/--resolution",
         ["--like", str(like), "--resolution", "20"])
    band = next((tmp_path / "bad").glob("*_SR_B4.TIF"))
    code, output = _cli([str(tmp_path / "bad"), "-o", str(band), "--model", str(tiny_release)])
    assert code == 2 and "is one of this run's inputs" in output, output
    # Any other existing output is refused at once, before the models load (a hub id that
    # does not exist would otherwise be the error).
    (outdir / "old.tif").write_bytes(b"the user's")
    code, output = _cli([str(tmp_path / "bad"), "-o", str(outdir / "old.tif"), "--model",
                         "nobody/no-such-model"])
    assert code == 2 and "old.tif: already exists; pass --overwrite" in output, output
    assert (outdir / "old.tif").read_bytes() == b"the user's"


def test_bounds_meeting_the_scene_only_at_its_edge_write_nothing(tmp_path, outdir,
                                                                 tiny_release) -> None:
    """A grid that meets the scene's data by 5 m, so that no output pixel's centre falls on
    it, is refused once warped, in both encodings, and nothing is left behind."""
    scene = make_scene(tmp_path / "edge")
    _left, bottom, right, top = scene.bounds
    bounds = f"{right - 5:.0f},{bottom:.0f},{right + 1000:.0f},{top:.0f}"
    for dtype in ("uint16", "float32"):
        code, output = _cli([str(scene.folder), "-o", str(outdir / "out.tif"), "--model",
                             str(tiny_release), "--bounds", bounds, "--dtype", dtype])
        assert code == 2 and "out.tif: not written: no pixel of the output grid has data" \
            in " ".join(output.split()), output
        _no_output_left(outdir)
    assert not list(outdir.iterdir())


def test_pixels_finer_than_the_model_are_warned_about(tmp_path: Path, scene: Scene) -> None:
    import warnings

    from s2l8h.errors import S2L8HWarning

    left, _bottom, _right, top = scene.bounds
    bounds = (left, top - 300, left + 300, top)
    with pytest.warns(S2L8HWarning, match="the output's 5 m pixels are finer than the 10 m "
                                          "the networks predict") as caught:
        harmonize(scene.folder, tmp_path / "fine.tif", models=[tiny_model()], bounds=bounds,
                  resolution=5, progress=False)
    assert all(w.filename == __file__ for w in caught if "finer" in str(w.message))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        harmonize(scene.folder, tmp_path / "ten.tif", models=[tiny_model()], bounds=bounds,
                  progress=False)
    assert not [w for w in caught if "finer than" in str(w.message)]
    # In the CRS's own units (US survey feet: 10 ft is 3.05 m), and in degrees at the grid's
    # latitude (the default lon/lat grid: 10 m of longitude at the equator, 5 m at 60° N).
    from s2l8h.inference.harmonize import pixel_size_m
    from s2l8h.io.grid import sentinel2_grid

    assert pixel_size_m(sentinel2_grid((0, 0, 1000, 1000), "EPSG:2263", 10)) == \
        pytest.approx(3.048, abs=1e-3)
    degree = 10 / 111_320
    assert pixel_size_m(sentinel2_grid((10, 0, 10.1, 0.1), "EPSG:4326", degree)) == \
        pytest.approx(9.93, abs=0.01)
    assert pixel_size_m(sentinel2_grid((10, 60, 10.1, 60.1), "EPSG:4326", degree)) == \
        pytest.approx(5.0, abs=0.02)


def test_bounds_overlapping_the_scene_in_part_are_kept(tmp_path: Path, scene: Scene,
                                                      tiny_release: Path) -> None:
    left, _bottom, _right, top = scene.bounds
    bounds = (left - 2_000, top - 200, left + 200, top + 2_000)
    out = harmonize(scene.folder, tmp_path / "part.tif", models=[tiny_model()],
                    bounds=bounds, progress=False)
    with rasterio.open(out.path) as dataset:
        assert dataset.shape == (221, 221)  # snapped outwards to 10 m
        assert dataset.transform.c == 692_000 and dataset.transform.f == 5_702_020
        covered = ~dataset.read(1, masked=True).mask
    assert covered.sum() == 21 * 21 and covered[-21:, -21:].all()  # pixels on the scene
    # What of the grid holds data is said (read whole at this size, so exact).
    shares = out.extra["mask_shares"]
    assert shares["valid"] == pytest.approx(21 * 21 / 221**2)
    assert shares["valid"] + shares["flagged"] + shares["nodata"] == pytest.approx(1)
    assert shares["nodata"] > 0.99
    cli = runner.invoke(app, ["harmonize", str(scene.folder), "-o", str(tmp_path / "cli.tif"),
                              "--model", str(tiny_release), "--bounds",
                              ",".join(map(str, bounds)), "-q"])
    assert cli.exit_code == 0, cli.output
    assert "pixels: 0.9 % valid, 0.0 % flagged by the quality band, 99.1 % no data (outside " \
        "the scene's footprint, or its fill)" in cli.output


def test_bad_all_nodata_scene(tmp_path, outdir, tiny_release) -> None:
    def mutate(scene):
        with rasterio.open(scene.band_path(2)) as band:
            transform = band.transform
        for number in range(2, 8):
            write_raster(scene.band_path(number), np.zeros((scene.rows, scene.cols),
                                                           dtype=np.uint16), transform, nodata=0)
    _bad(tmp_path, outdir, tiny_release, mutate, "no valid pixels")


def test_bad_nans(tmp_path, outdir, tiny_release) -> None:
    def mutate(scene):
        with rasterio.open(scene.band_path(2)) as band:
            transform = band.transform
        values = scene.digital_numbers[2].astype(np.float32)
        values[5, 5] = np.nan
        write_raster(scene.band_path(4), values, transform)
    _bad(tmp_path, outdir, tiny_release, mutate, "_SR_B4.TIF: contains NaN values")


def test_bad_unknown_model(tmp_path, outdir) -> None:
    _bad(tmp_path, outdir, Path("unet9-magic"), lambda scene: None, "not a registered model")


def test_bad_level1_without_toa(tmp_path, outdir, tiny_release) -> None:
    from conftest import DATA

    code, output = _cli([str(DATA / "marburg"), "-o", str(outdir / "out.tif"), "--model",
                         str(tiny_release)])
    assert code != 0 and "run in TOA mode (--toa)" in output
    _no_output_left(outdir)


def test_bad_missing_sr_band(tmp_path, outdir, tiny_release) -> None:
    def mutate(scene):
        scene.band_path(6).unlink()
    _bad(tmp_path, outdir, tiny_release, mutate, "surface-reflectance bands missing: ['SR_B6']")


def test_bad_existing_output_is_kept(tmp_path, outdir, tiny_release, scene) -> None:
    existing = outdir / "out.tif"
    existing.write_bytes(b"user data")
    code, output = _cli([str(scene.folder), "-o", str(existing), "--model", str(tiny_release)])
    assert code != 0 and "already exists; pass --overwrite" in output
    assert existing.read_bytes() == b"user data"
    code, output = _cli([str(scene.folder), "-o", str(existing), "--model", str(tiny_release),
                         "--overwrite"])
    assert code == 0, output
    assert rasterio.open(existing).count == 7


def _creation_fails(folder: Path) -> bool:
    import tempfile

    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return True
    return False


def test_bad_unwritable_output_folder(tmp_path, tiny_release, scene) -> None:
    if os.geteuid() == 0:  # root writes through permissions; /sys is a read-only mount
        locked = Path("/sys")
        if os.access(locked, os.W_OK) and not _creation_fails(locked):
            pytest.skip("no unwritable folder available to root here")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
    try:
        code, output = _cli([str(scene.folder), "-o", str(locked / "out.tif"), "--model",
                             str(tiny_release)])
        assert code != 0 and "is not writable" in output, output
        assert not (locked / "out.tif").exists()
    finally:
        if locked != Path("/sys"):
            locked.chmod(0o700)


def test_bad_output_folder_missing_or_unwritable_api(tmp_path, scene) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        harmonize(scene.folder, tmp_path / "nope" / "out.tif", models=[tiny_model()],
                  progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="does not exist"):
        harmonize(scene.folder, blocker / "out.tif", models=[tiny_model()], progress=False)


def test_failure_mid_run_leaves_nothing(tmp_path, outdir, scene, monkeypatch) -> None:
    from s2l8h.io import reader

    calls = {"n": 0}
    original = reader.SceneReader.read_strip

    def flaky(self, *args):
        # Fails at the first read of the run proper, once the temporary output exists
        # (reads before it measure the inputs).
        if list(outdir.iterdir()):
            calls["n"] += 1
            raise InputError(scene.band_path(2), "simulated read failure")
        return original(self, *args)

    monkeypatch.setattr(reader.SceneReader, "read_strip", flaky)
    with pytest.raises(InputError, match="simulated"):
        harmonize(scene.folder, outdir / "out.tif", models=[tiny_model()], tile=48,
                  overlap=12, progress=False)
    assert calls["n"] == 1
    _no_output_left(outdir)


def test_cli_harmonize_and_demo(tmp_path: Path, tiny_ensemble, scene: Scene) -> None:
    code, output = _cli([str(scene.folder), "-o", str(tmp_path / "cli.tif"),
                         "--model", str(tiny_ensemble[0]), "--model", str(tiny_ensemble[1]),
                         "--tile", "96", "--overlap", "24", "--dtype", "float32"])
    assert code == 0, output
    assert "uncertainty: ensemble" in output
    assert rasterio.open(tmp_path / "cli.tif").count == 13
    result = runner.invoke(app, ["demo", "-o", str(tmp_path / "demo"), "-q"])
    assert result.exit_code == 0, result.output
    assert "default weights 'lite2.real-wald8'" in result.output
    # The bundled pre-collection scene's geolocation warning, shown as harmonize shows it
    # (not Python's raw warning line), and not the TOA mode the demo states itself.
    assert "warning: LC80200392015216LGN00: geolocation: a pre-collection scene" in \
        " ".join(result.output.split())
    assert "InputCheckWarning" not in result.output and "TOA mode:" not in result.output
    with rasterio.open(tmp_path / "demo" / "harmonized.tif") as dataset:
        assert dataset.count == 13 and dataset.res == (10.0, 10.0)
        assert dataset.crs.to_epsg() == 32616
    assert (tmp_path / "demo" / "quicklook.png").read_bytes()[:4] == b"\x89PNG"
    # Issue 13: the demo is re-runnable (it replaces its own earlier outputs) ...
    again = runner.invoke(app, ["demo", "-o", str(tmp_path / "demo"), "-q"])
    assert again.exit_code == 0, again.output
    # ... but a file of the user's under those names is kept without --overwrite.
    (tmp_path / "demo" / "quicklook.png").write_bytes(b"my picture")
    third = runner.invoke(app, ["demo", "-o", str(tmp_path / "demo"), "-q"])
    assert third.exit_code != 0 and "--overwrite" in third.output
    assert (tmp_path / "demo" / "quicklook.png").read_bytes() == b"my picture"
    # ... and so is an s2l8h output of the user's own run under the demo's name.
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(tmp_path / "cli.tif", mine / "harmonized.tif")
    before = (mine / "harmonized.tif").read_bytes()
    fourth = runner.invoke(app, ["demo", "-o", str(mine), "-q"])
    assert fourth.exit_code != 0 and "--overwrite" in fourth.output
    assert (mine / "harmonized.tif").read_bytes() == before


def test_florida_crop_runs_in_toa_mode(tmp_path: Path) -> None:
    copy = tmp_path / "florida"
    shutil.copytree(FLORIDA, copy)
    with pytest.warns(UserWarning, match="TOA mode"):
        result = harmonize(copy, tmp_path / "fl.tif", models=[tiny_model()], toa=True,
                           progress=False)
    data, transform, crs, _ = _read(result.path)
    assert crs.to_epsg() == 32616 and transform.c % 10 == 0
    assert (data[6] == 1).mean() > 0.9


def test_no_uncertainty_with_several_models_is_their_mean_without_sigma(
        tmp_path: Path, scene: Scene, tiny_ensemble) -> None:
    """``--uncertainty none`` with an ensemble (the default is one) writes the same mean as
    ``ensemble`` does, without the σ bands."""
    outputs = {}
    for method in ("ensemble", "none"):
        result = harmonize(scene.folder, tmp_path / f"{method}.tif", models=tiny_ensemble,
                           uncertainty=method, dtype="float32", progress=False)
        assert result.uncertainty == method
        data, _, _, names = _read(result.path)
        outputs[method] = (data, names)
    (with_sigma, names_sigma), (without, names) = outputs["ensemble"], outputs["none"]
    assert names == ["B02", "B03", "B04", "B8A", "B11", "B12", "mask"]
    assert len(names_sigma) == 13
    np.testing.assert_array_equal(without[-1], with_sigma[-1])
    np.testing.assert_allclose(without[:6], with_sigma[:6], atol=1e-6, equal_nan=True)


def test_an_uncertainty_that_does_not_fit_the_models_is_a_one_line_error(
        outdir: Path, scene: Scene, tiny_ensemble) -> None:
    # The default is an ensemble of two: a single-model method is the user's mistake.
    for models, method, message in (
            ([], "head", "uncertainty 'head' takes one model, got 2"),
            ([tiny_ensemble[0]], "mc-dropout", "MC dropout needs a model with dropout")):
        flags = [item for model in models for item in ("--model", str(model))]
        code, output = _cli([str(scene.folder), "-o", str(outdir / "out.tif"), *flags,
                             "--uncertainty", method])
        assert code == 2, output
        assert f"error: {message}" in output and "Traceback" not in output
        _no_output_left(outdir)
