"""Issue 13: every bad scene and every bad option fails with a clear one-line error, exit code
2, and no file changed; the good variants (7-band stack with QA, an MTL under any name, a
scene folder holding an earlier output) work."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from typer.testing import CliRunner

from conftest import (
    L1_PRODUCT,
    ORIGIN,
    PRODUCT,
    Scene,
    make_scene,
    mtl_json,
    tiny_model,
    write_raster,
)
from s2l8h import harmonize
from s2l8h.cli import app
from s2l8h.errors import InputError, OptionError
from s2l8h.io.landsat import open_scene

runner = CliRunner()
BAND_TRANSFORM = Affine(30, 0, ORIGIN[0], 0, -30, ORIGIN[1])


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file (hidden ones included) under ``folders`` with its content hash."""
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in folders if folder.exists()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def run_bad(args: list[str], message: str, *folders: Path) -> str:
    """Run ``s2l8h args``: exit code 2, ``message`` in the one-line error, no file of
    ``folders`` changed, added or removed."""
    before = snapshot(*folders)
    result = runner.invoke(app, [*args, "-q"] if args[0] == "harmonize" else args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert snapshot(*folders) == before
    return result.output


@pytest.fixture
def setup(tmp_path: Path, tiny_release: Path):
    scene = make_scene(tmp_path / "scene")
    outdir = tmp_path / "out"
    outdir.mkdir()

    def bad(mutate, message: str, inputs: list[Path] | None = None,
            extra: list[str] | None = None) -> str:
        mutate(scene)
        args = ["harmonize", *[str(p) for p in (inputs or [scene.folder])], "-o",
                str(outdir / "out.tif"), "--model", str(tiny_release), *(extra or [])]
        return run_bad(args, message, scene.folder, outdir)

    return scene, outdir, bad


# ------------------------------------------------------------------ scene files ----

def test_band_file_with_three_bands(setup) -> None:
    setup[2](lambda s: write_raster(s.band_path(4), s.digital_numbers[:3], BAND_TRANSFORM, 0),
        "_SR_B4.TIF: has 3 bands; a Landsat band file has one")


def test_float_reflectance_instead_of_digital_numbers(setup) -> None:
    def mutate(s: Scene) -> None:
        for index, number in enumerate(range(2, 8)):
            reflectance = s.digital_numbers[index] * np.float32(0.0000275) - np.float32(0.2)
            write_raster(s.band_path(number), reflectance.astype(np.float32), BAND_TRANSFORM)
    setup[2](mutate, "_SR_B2.TIF: values look like reflectance")


def test_reflectance_times_10000_instead_of_digital_numbers(setup) -> None:
    def mutate(s: Scene) -> None:
        for index, number in enumerate(range(2, 8)):
            scaled = np.rint((s.digital_numbers[index] * 0.0000275 - 0.2) * 10000)
            write_raster(s.band_path(number), scaled.astype(np.uint16), BAND_TRANSFORM, 0)
    setup[2](mutate, "not Collection-2 SR digital numbers")


def test_band_in_another_utm_zone(setup) -> None:
    setup[2](lambda s: write_raster(s.band_path(5), s.digital_numbers[3], BAND_TRANSFORM, 0,
                                    crs=32631),
             "_SR_B5.TIF: in EPSG:32631, but")


def test_band_shifted_by_3_km(setup) -> None:
    shifted = Affine(30, 0, ORIGIN[0] + 3000, 0, -30, ORIGIN[1])
    setup[2](lambda s: write_raster(s.band_path(6), s.digital_numbers[4], shifted, 0),
             "_SR_B6.TIF: grid differs from")


def test_band_from_another_date(setup) -> None:
    def mutate(s: Scene) -> None:
        path = s.band_path(3)
        path.rename(path.with_name(path.name.replace("_20230707_", "_20230708_")))
    out = setup[2](mutate, "acquisition date differs from the rest of the scene")
    assert "20230708" in out


def test_pan_and_its_mtl_from_another_date(setup) -> None:
    def mutate(s: Scene) -> None:
        other = L1_PRODUCT.replace("_20230707_", "_20230723_")
        (s.folder / f"{L1_PRODUCT}_B8.TIF").rename(s.folder / f"{other}_B8.TIF")
        document = mtl_json("L1TP")
        document["LANDSAT_METADATA_FILE"]["IMAGE_ATTRIBUTES"]["DATE_ACQUIRED"] = "2023-07-23"
        document["LANDSAT_METADATA_FILE"]["PRODUCT_CONTENTS"]["LANDSAT_PRODUCT_ID"] = other
        (s.folder / f"{L1_PRODUCT}_MTL.json").unlink()
        (s.folder / f"{other}_MTL.json").write_text(json.dumps(document))
    setup[2](mutate, "acquisition date differs from the rest of the scene")


def test_dem_given_where_the_pan_belongs(setup) -> None:
    scene, _, bad = setup
    dem = write_raster(scene.folder.parent / "dem.tif",
                       np.full((scene.rows, scene.cols), 120, dtype=np.int16), BAND_TRANSFORM)
    inputs = [*(scene.band_path(n) for n in range(2, 8)),
              scene.folder / f"{PRODUCT}_QA_PIXEL.TIF", dem,
              scene.folder / f"{L1_PRODUCT}_MTL.json"]
    bad(lambda s: None, "dem.tif: pan band has 30 x 30 m pixels; a Landsat-8/9 pan band has "
        "15 m pixels", inputs=inputs)


def _edit_mtls(folder: Path, section: str, key: str, value: str) -> None:
    for path in folder.glob("*_MTL.json"):
        document = json.loads(path.read_text())
        document["LANDSAT_METADATA_FILE"][section][key] = value
        path.write_text(json.dumps(document))


def test_mtl_rescaling_not_a_number(setup) -> None:
    setup[2](lambda s: _edit_mtls(s.folder, "LEVEL1_RADIOMETRIC_RESCALING",
                                  "REFLECTANCE_MULT_BAND_8", "abc"),
             "REFLECTANCE_MULT_BAND_8 is not a number: 'abc'")


@pytest.mark.parametrize("sun", ["-12.5", "0"])
def test_mtl_sun_below_the_horizon(setup, sun: str) -> None:
    setup[2](lambda s: _edit_mtls(s.folder, "IMAGE_ATTRIBUTES", "SUN_ELEVATION", sun),
             "is outside (0, 90]: the sun is at or below the horizon")


def test_mtl_rescaling_out_of_physical_range(setup) -> None:
    setup[2](lambda s: _edit_mtls(s.folder, "LEVEL1_RADIOMETRIC_RESCALING",
                                  "REFLECTANCE_ADD_BAND_8", "-250"),
             "REFLECTANCE_ADD_BAND_8 = -250 is outside the physical range")


def test_seven_band_stack_whose_band_7_is_not_qa(setup, tmp_path: Path) -> None:
    scene, _, bad = setup
    data = np.concatenate([scene.digital_numbers, scene.digital_numbers[:1]])
    stack = write_raster(tmp_path / "stack.tif", data, BAND_TRANSFORM, 0)
    bad(lambda s: None, "stack.tif: stack has 7 bands and band 7 is not a QA_PIXEL band",
        inputs=[stack, scene.folder / f"{L1_PRODUCT}_B8.TIF",
                scene.folder / f"{L1_PRODUCT}_MTL.json"])


def test_seven_band_stack_with_qa_masks_clouds_as_separate_files_do(tmp_path: Path) -> None:
    """The paper's example layout: six SR bands + QA_PIXEL in one file, the pan and an MTL
    named like the product (``..._T1.json``, not ``_MTL.json``)."""
    scene = make_scene(tmp_path / "cloudy", cloud_box=(10, 20, 12, 24))
    stack = write_raster(tmp_path / "stack.tif",
                         np.concatenate([scene.digital_numbers, scene.qa[None]]),
                         BAND_TRANSFORM, 0)
    mtl = shutil.copy(scene.folder / f"{L1_PRODUCT}_MTL.json", tmp_path / f"{L1_PRODUCT}.json")
    pan = scene.folder / f"{L1_PRODUCT}_B8.TIF"
    opened = open_scene([stack, pan, mtl])
    assert (opened.qa, opened.qa_band, opened.qa_layout) == (stack, 7, "qa_pixel")
    assert opened.pan_metadata is not None and opened.pan_metadata.path == mtl
    model = tiny_model(0)
    from_stack = harmonize([stack, pan, mtl], tmp_path / "stack_out.tif", models=[model],
                           progress=False)
    from_files = harmonize(scene.folder, tmp_path / "files_out.tif", models=[model],
                           progress=False)
    with rasterio.open(from_stack.path) as a, rasterio.open(from_files.path) as b:
        mask_stack, mask_files = a.read(a.count), b.read(b.count)
    assert (mask_files == 2).sum() == 30 * 36  # 10 x 12 cloudy 30 m pixels at 10 m
    np.testing.assert_array_equal(mask_stack, mask_files)


def test_explicit_text_file_that_is_not_an_mtl(setup, tmp_path: Path) -> None:
    scene, _, bad = setup
    notes = tmp_path / "notes.txt"
    notes.write_text("GROUP = X\n  A = 1\nEND_GROUP = X\n")
    bad(lambda s: None, "notes.txt: not a Landsat MTL",
        inputs=[*scene.folder.glob("*.TIF"), *scene.folder.glob("*.json"), notes])


def test_earlier_output_in_the_scene_folder_is_not_an_input(tmp_path: Path,
                                                            tiny_release: Path) -> None:
    scene = make_scene(tmp_path / "scene")
    first = runner.invoke(app, ["harmonize", str(scene.folder), "-o",
                                str(scene.folder / "result.tif"), "--model", str(tiny_release),
                                "-q"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["harmonize", str(scene.folder), "-o",
                                str(tmp_path / "again.tif"), "--model", str(tiny_release),
                                "-q"])
    assert again.exit_code == 0, again.output
    with rasterio.open(scene.folder / "result.tif") as a, \
            rasterio.open(tmp_path / "again.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
    run_bad(["harmonize", str(scene.folder / "result.tif"), *map(str, scene.folder.glob(
        "LC08*")), "-o", str(tmp_path / "third.tif"), "--model", str(tiny_release)],
            "result.tif: is an s2l8h output", scene.folder)


# ----------------------------------------------------------------------- options ----

@pytest.mark.parametrize(("option", "message"), [
    (["--resolution", "0"], "--resolution must be a positive number, got 0.0"),
    (["--resolution", "-10"], "--resolution must be a positive number"),
    (["--resolution", "0.001"], "more than the limit of 1.5 Gpx"),
    (["--bounds", "166000,0,834000,9330000"], "more than the limit of 1.5 Gpx"),
    (["--threads", "-1"], "--threads must be 1 or more, got -1"),
    (["--threads", "0"], "--threads must be 1 or more, got 0"),
    (["--batch-size", "0"], "--batch-size must be 1 or more, got 0"),
    (["--overlap", "-8"], "--overlap must be 0 or more output pixels, got -8"),
    (["--overlap", "400", "--tile", "512"], "--overlap (400) must be at most half the tile"),
    (["--tile", "0"], "--tile must be at least 16 output pixels, got 0"),
    (["--mc-passes", "1"], "--mc-passes must be 2 or more"),
    (["--dtype", "int8"], "--dtype must be one of uint16, float32, got 'int8'"),
    (["--uncertainty", "magic"], "--uncertainty must be one of"),
    (["--device", "meta"], "only cpu, cuda, cuda:N and mps are supported"),
    (["--device", "gpu0"], "is not a device"),
])
def test_bad_options(setup, option: list[str], message: str) -> None:
    scene, outdir, _ = setup
    run_bad(["harmonize", str(scene.folder), "-o", str(outdir / "out.tif"), *option],
            message, scene.folder, outdir)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_device_cuda_without_a_gpu(setup) -> None:
    scene, outdir, _ = setup
    run_bad(["harmonize", str(scene.folder), "-o", str(outdir / "out.tif"), "--device",
             "cuda"], "no CUDA GPU is available", scene.folder, outdir)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_device_mps_without_mps(setup) -> None:
    scene, outdir, _ = setup
    run_bad(["harmonize", str(scene.folder), "-o", str(outdir / "out.tif"), "--device", "mps"],
            "Apple MPS is not available here", scene.folder, outdir)


def test_options_are_checked_in_the_api_too(scene: Scene, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="--batch-size must be 1 or more"):
        harmonize(scene.folder, tmp_path / "o.tif", models=[tiny_model()], batch_size=0,
                  progress=False)
    assert not list(tmp_path.glob("*o.tif*"))


def test_all_cloud_scene_with_keep_flagged_is_accepted(tmp_path: Path,
                                                       tiny_release: Path) -> None:
    scene = make_scene(tmp_path / "overcast", cloud_box=(0, 40, 0, 48))
    args = ["harmonize", str(scene.folder), "--model", str(tiny_release), "-q"]
    run_bad([*args[:2], "-o", str(tmp_path / "masked.tif"), *args[2:]],
            "no valid pixel in the output grid", scene.folder)
    kept = runner.invoke(app, [*args, "-o", str(tmp_path / "kept.tif"), "--keep-flagged"])
    assert kept.exit_code == 0, kept.output
    with rasterio.open(tmp_path / "kept.tif") as dataset:
        mask, blue = dataset.read(dataset.count), dataset.read(1)
    assert (mask[3:-3, 3:-3] == 2).all() and (blue[mask == 2] > 0).all()


def test_error_classes_are_one_hierarchy() -> None:
    from s2l8h.data.stac import CatalogError
    from s2l8h.errors import OutputError, S2L8HError
    from s2l8h.io.errors import InputError as IoInputError
    from s2l8h.models import ModelLoadError
    from s2l8h.train.config import ConfigError

    for error in (InputError, OutputError, OptionError, ModelLoadError, ConfigError,
                  CatalogError):
        assert issubclass(error, S2L8HError)
    assert IoInputError is InputError
    assert issubclass(OutputError, OSError) and issubclass(InputError, ValueError)


def test_a_bug_keeps_its_traceback(scene: Scene, tmp_path: Path, monkeypatch) -> None:
    """Only the project's own errors become one-line messages: a KeyError is a bug."""
    import importlib

    # The module, not the function the package re-exports under the same name.
    inference_harmonize = importlib.import_module("s2l8h.inference.harmonize")

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    # The command imports harmonize when it runs (fast start-up): patch it at its source.
    monkeypatch.setattr(inference_harmonize, "harmonize", broken)
    result = runner.invoke(app, ["harmonize", str(scene.folder), "-o",
                                 str(tmp_path / "o.tif"), "-q"])
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)
    assert "error:" not in result.output


def test_input_error_names_the_file(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s")
    write_raster(scene.band_path(7), scene.digital_numbers[:2], BAND_TRANSFORM, 0)
    with pytest.raises(InputError) as caught:
        open_scene(scene.folder)
    assert caught.value.path == scene.band_path(7)
