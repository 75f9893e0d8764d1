"""Tiny generated Landsat scenes and small models for the tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

from s2l8h import create_model, save_pretrained

DATA = Path(__file__).parent / "data"
FLORIDA = Path(__file__).parents[1] / "src" / "s2l8h" / "examples" / "florida_crop"
PRODUCT = "LC08_L2SP_195025_20230707_20230717_02_T1"
L1_PRODUCT = "LC08_L1TP_195025_20230707_20230717_02_T1"
EPSG = 32632
# Landsat pixel edges sit at 15 m modulo 30 m.
ORIGIN = (694005.0, 5700015.0)
PAN_MULT, PAN_ADD, SUN_ELEVATION = 2.0e-5, -0.1, 55.0


@dataclass
class Scene:
    folder: Path
    rows: int
    cols: int
    digital_numbers: np.ndarray  # (6, rows, cols) uint16 SR DNs
    pan: np.ndarray  # (2 rows, 2 cols) uint16 L1 DNs
    qa: np.ndarray

    def band_path(self, number: int) -> Path:
        return self.folder / f"{PRODUCT}_SR_B{number}.TIF"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        x0, y0 = ORIGIN
        return x0, y0 - 30 * self.rows, x0 + 30 * self.cols, y0


def write_raster(path: Path, data: np.ndarray, transform: Affine, nodata=None,
                 crs: int = EPSG) -> Path:
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype, crs=f"EPSG:{crs}",
                       transform=transform, nodata=nodata) as dataset:
        dataset.write(data)
    return path


def mtl_json(level: str = "L2SP", with_pan: bool = True) -> dict:
    rescaling = {}
    for band in range(1, 10):
        rescaling[f"REFLECTANCE_MULT_BAND_{band}"] = f"{PAN_MULT:.4E}"
        rescaling[f"REFLECTANCE_ADD_BAND_{band}"] = f"{PAN_ADD:.6f}"
    if not with_pan:
        del rescaling["REFLECTANCE_MULT_BAND_8"]
    return {"LANDSAT_METADATA_FILE": {
        "PRODUCT_CONTENTS": {"LANDSAT_PRODUCT_ID": PRODUCT if level.startswith("L2")
                             else L1_PRODUCT, "PROCESSING_LEVEL": level},
        "IMAGE_ATTRIBUTES": {"SPACECRAFT_ID": "LANDSAT_8", "DATE_ACQUIRED": "2023-07-07",
                             "SUN_ELEVATION": f"{SUN_ELEVATION}"},
        "LEVEL1_RADIOMETRIC_RESCALING": rescaling,
    }}


def make_scene(folder: Path, rows: int = 40, cols: int = 48, seed: int = 0,
               fill_rows: int = 0, cloud_box: tuple[int, int, int, int] | None = None,
               with_pan: bool = True) -> Scene:
    """A Collection-2 Level-2 scene with a smooth reflectance field: SR bands, QA_PIXEL,
    L1 pan + MTL JSON. ``fill_rows``: top rows are fill; ``cloud_box``: (r0, r1, c0, c1)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    reflectance = np.stack([0.05 + 0.03 * band + 0.05 * np.sin(xx / 5 + band) * np.cos(yy / 7)
                            + 0.01 * rng.random((rows, cols)) for band in range(6)])
    digital_numbers = np.rint((reflectance + 0.2) / 0.0000275).astype(np.uint16)
    qa = np.full((rows, cols), 21824, dtype=np.uint16)  # clear, low confidences
    if fill_rows:
        digital_numbers[:, :fill_rows] = 0
        qa[:fill_rows] = 1
    if cloud_box:
        r0, r1, c0, c1 = cloud_box
        qa[r0:r1, c0:c1] = 22280  # cloud, high cloud confidence
    transform = Affine(30, 0, ORIGIN[0], 0, -30, ORIGIN[1])
    for index, number in enumerate(range(2, 8)):
        write_raster(folder / f"{PRODUCT}_SR_B{number}.TIF", digital_numbers[index], transform,
                     nodata=0)
    write_raster(folder / f"{PRODUCT}_QA_PIXEL.TIF", qa, transform, nodata=1)
    pan_reflectance = np.kron(reflectance[:3].mean(axis=0), np.ones((2, 2)))
    pan = np.rint((pan_reflectance - PAN_ADD) / PAN_MULT).astype(np.uint16)
    if fill_rows:
        pan[: 2 * fill_rows] = 0
    (folder / f"{PRODUCT}_MTL.json").write_text(json.dumps(mtl_json("L2SP")))
    if with_pan:
        write_raster(folder / f"{L1_PRODUCT}_B8.TIF", pan,
                     Affine(15, 0, ORIGIN[0], 0, -15, ORIGIN[1]), nodata=0)
        (folder / f"{L1_PRODUCT}_MTL.json").write_text(json.dumps(mtl_json("L1TP")))
    return Scene(folder, rows, cols, digital_numbers, pan, qa)


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return make_scene(tmp_path / "scene")


@pytest.fixture(scope="session")
def scenes():
    """The Virginia training scene loaded for simulated pairs, split 55 / 15 / 30 % as the
    default models' configurations split it."""
    from s2l8h.data.pairs import load_scenes

    virginia = Path(__file__).parents[1] / "data" / "s2_l1c_virginia_north"
    return load_scenes([{"path": str(virginia), "fractions": [0.55, 0.15, 0.3]}])


def tiny_mixed_training(run_dir: Path) -> list[str]:
    """``--set`` overrides for a one-epoch training run of a tiny lite network into
    ``run_dir`` on a few simulated pairs mixed with Wald pairs of the bundled Florida crop."""
    return [
        f"output.dir={run_dir}", "trainer.max_epochs=1", "data.train_samples=8",
        "data.val_samples=8", "data.real_samples=8", "data.real_val_samples=4",
        "data.patch_size=8", "data.batch_size=8", "model.init=''",
        "model.overrides={width: 8, blocks: 1}",
        f"data.real_scenes=[{{path: {FLORIDA}, toa: true, fractions: [0.5, 0.25, 0.25], "
        "radiometry: L1T TOA crop, source: bundled example}]"]


def tiny_model(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return create_model("unet5-upsample", depth=2, growth_factor=2, **overrides).eval()


@pytest.fixture
def tiny_release(tmp_path: Path) -> Path:
    """A tiny UNet saved in our release format (loadable by path from the CLI)."""
    return save_pretrained(tiny_model(0), tmp_path / "tiny-model")


@pytest.fixture
def tiny_ensemble(tmp_path: Path) -> list[Path]:
    return [save_pretrained(tiny_model(seed), tmp_path / f"tiny-{seed}") for seed in (0, 1)]


def stale_workdir(outdir: Path, output: str = "out.tif") -> tuple[Path, int]:
    """A temporary folder for ``output`` in ``outdir`` as a killed run of this host leaves it
    (its owner file names a process that has ended); returns it and that process id."""
    import json
    import socket
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = outdir / f".{output}.k9x2abcd"
    stale.mkdir(parents=True)
    (stale / "rows.tif").write_bytes(b"\0" * 4096)
    (stale / "s2l8h-owner.json").write_text(json.dumps(
        {"pid": dead.pid, "host": socket.gethostname(), "output": output}))
    return stale, dead.pid
