"""End-to-end `s2l8h harmonize` against the model alone, on generated scenes.

For each ``--size`` (output pixels, square, 10 m) it writes a Landsat Collection-2 L2 scene
(SR bands, QA_PIXEL, pan + MTL; a smooth field tiled from one precomputed block, so
generating even a full-scene-sized input takes seconds), then in one run measures:

- model-only throughput: the model's forward passes over the scene's tiles (same
  tile plan, tile size, overlap and batch as harmonize; in memory, no I/O; on at most
  ``--model-tiles`` tiles, scaled to the whole plan);
- end-to-end throughput: ``s2l8h harmonize SCENE -o out.tif`` run as a child process, so
  Python start-up, imports and model loading count, until the COG is renamed into place;
- the busy seconds of each stage (read, model, write, COG; read and write run in threads
  beside the model, so shares can add up to more than 100 %), and the child's peak RSS;
- that the output validates as a COG (rio-cogeo).

``--model`` (repeat) runs each named model on the same scene (default: the default model).
``--compression`` also times the COG driver on the first output with several lossless
compressors (the choice of ``s2l8h.io.cog.COMPRESSION`` was made with it).
All figures come from this one run; ratios compare measurements taken side by side.

    nice -n 10 python benchmarks/end_to_end.py --size 3000 --compression
    nice -n 10 python benchmarks/end_to_end.py --size 3000 --size 20010
    nice -n 5 python benchmarks/end_to_end.py --size 3000 --model lite2.real-wald6 \
        --model lite2.real-wald5
    python benchmarks/end_to_end.py --size 3000 --compare-denoise   # with / without the filter
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = (600015.0, 5400015.0)  # Landsat pixel edges sit at 15 m modulo 30 m
PRODUCT = "LC08_L2SP_001001_20230101_20230102_02_T1"
L1_PRODUCT = "LC08_L1TP_001001_20230101_20230102_02_T1"
BLOCK_ROWS = 256


def write_scene(folder: Path, rows: int, cols: int) -> None:
    """SR bands, QA_PIXEL (all clear), pan and MTL of a ``rows`` x ``cols`` (30 m) scene.

    One block of ``BLOCK_ROWS`` rows per band is computed once and written, shifted, down the
    scene: uncompressed tiled GeoTIFFs, bounded memory."""
    folder.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "dtype": "uint16", "crs": "EPSG:32632", "nodata": 0,
               "tiled": True, "blockxsize": 256, "blockysize": 256, "BIGTIFF": "IF_SAFER"}
    rng = np.random.default_rng(0)
    x = np.arange(cols)
    y = np.arange(BLOCK_ROWS)[:, None]
    blocks = []
    for band in range(6):
        value = (0.08 + 0.04 * band + 0.05 * np.sin(x / 17 + band) * np.cos(y / 23)
                 + 0.01 * rng.random((BLOCK_ROWS, cols)))
        blocks.append(value)
    pan_block = np.kron(np.mean(blocks[:3], axis=0), np.ones((2, 2)))
    to_dn = [np.rint((value + 0.2) / 2.75e-5).astype(np.uint16) for value in blocks]
    pan_dn = np.rint((pan_block + 0.1) / 2e-5).astype(np.uint16)
    transform = Affine(30, 0, ORIGIN[0], 0, -30, ORIGIN[1])
    names = [f"{PRODUCT}_SR_B{n}.TIF" for n in range(2, 8)]
    with rasterio.open(folder / f"{PRODUCT}_QA_PIXEL.TIF", "w", width=cols, height=rows,
                       count=1, transform=transform, **profile) as qa:
        for row0 in range(0, rows, BLOCK_ROWS):
            height = min(BLOCK_ROWS, rows - row0)
            qa.write(np.full((1, height, cols), 21824, dtype=np.uint16),
                     window=rasterio.windows.Window(0, row0, cols, height))
    for name, block in zip(names, to_dn, strict=True):
        with rasterio.open(folder / name, "w", width=cols, height=rows, count=1,
                           transform=transform, **profile) as dataset:
            for index, row0 in enumerate(range(0, rows, BLOCK_ROWS)):
                height = min(BLOCK_ROWS, rows - row0)
                dataset.write(np.roll(block, 7 * index, axis=1)[None, :height],
                              window=rasterio.windows.Window(0, row0, cols, height))
    with rasterio.open(folder / f"{L1_PRODUCT}_B8.TIF", "w", width=2 * cols, height=2 * rows,
                       count=1, transform=Affine(15, 0, ORIGIN[0], 0, -15, ORIGIN[1]),
                       **profile) as pan:
        for index, row0 in enumerate(range(0, rows, BLOCK_ROWS)):
            height = min(BLOCK_ROWS, rows - row0)
            pan.write(np.roll(pan_dn, 14 * index, axis=1)[None, :2 * height],
                      window=rasterio.windows.Window(0, 2 * row0, 2 * cols, 2 * height))
    rescaling = {f"REFLECTANCE_{kind}_BAND_{b}": value for b in range(1, 10)
                 for kind, value in (("MULT", "2.0000E-05"), ("ADD", "-0.100000"))}
    mtl = {"LANDSAT_METADATA_FILE": {
        "PRODUCT_CONTENTS": {"LANDSAT_PRODUCT_ID": L1_PRODUCT, "PROCESSING_LEVEL": "L1TP"},
        "IMAGE_ATTRIBUTES": {"SPACECRAFT_ID": "LANDSAT_8", "DATE_ACQUIRED": "2023-01-01",
                             "SUN_ELEVATION": "45.0"},
        "LEVEL1_RADIOMETRIC_RESCALING": rescaling}}
    (folder / f"{L1_PRODUCT}_MTL.json").write_text(json.dumps(mtl))


def model_only(model: str, size: int, tile: int, overlap: int, batch_size: int,
               max_tiles: int, precision: str) -> tuple[float, int, int]:
    """Seconds ``model`` (a registered name, as ``--model`` takes it) needs for all tiles of a
    ``size``² output (scaled from at most ``max_tiles`` tiles), the plan's tile count and the
    tiles timed."""
    import torch

    from s2l8h.inference.harmonize import resolve_models
    from s2l8h.inference.tiling import autocast, plan_tiles
    from s2l8h.inference.uncertainty import make_predictor

    models = resolve_models([model])
    predictor = make_predictor(models, "auto")
    scale = models[0].convention.scale
    low = math.ceil(size / scale)
    plan = plan_tiles(low, low, tile, overlap, predictor.alignment, scale)
    side = plan.cols.tile
    rng = np.random.default_rng(1)
    multispectral = torch.from_numpy(
        rng.uniform(0.02, 0.4, (batch_size, 6, side, side)).astype(np.float32))
    pan = torch.from_numpy(
        rng.uniform(0.02, 0.4, (batch_size, 1, 2 * side, 2 * side)).astype(np.float32))
    with torch.inference_mode(), autocast("cpu", precision):  # type: ignore[arg-type]
        predictor(multispectral[:1], pan[:1])  # warm-up (one-time allocations)
        timed = min(plan.count, max_tiles)
        started = time.perf_counter()
        done = 0
        while done < timed:
            count = min(batch_size, timed - done)
            predictor(multispectral[:count], pan[:count])
            done += count
        seconds = time.perf_counter() - started
    return seconds * plan.count / timed, plan.count, timed


def end_to_end(scene: Path, output: Path, extra: list[str]) -> dict[str, object]:
    """Run the CLI in a child process; wall seconds, its peak RSS, its stage report."""
    env = dict(os.environ)
    if (ROOT / "src" / "s2l8h").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                          env.get("PYTHONPATH")]))
    log = output.with_suffix(".log")
    command = [sys.executable, "-m", "s2l8h", "harmonize", str(scene), "-o", str(output), "-q",
               *extra]
    started = time.perf_counter()
    with log.open("w") as handle:
        child = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if child.returncode != 0:
        raise RuntimeError(f"harmonize failed ({child.returncode}):\n{text}")
    inside = float(re.search(r"tiles, ([0-9.]+) s\)", text).group(1))
    stages = dict(re.findall(r"(\w+) ([0-9.]+)", text.split("stages (s):")[1]))
    return {"wall": wall, "inside": inside, "rss_gib": usage.ru_maxrss / 2**20,
            "stages": {key: float(value) for key, value in stages.items()}}


def compression_table(cog: Path, workdir: Path) -> list[tuple[str, float, float]]:
    """Seconds and compression ratio of the COG driver from an uncompressed copy of ``cog``
    (its overviews kept), per option set."""
    raw = workdir / "raw.tif"
    rasterio.shutil.copy(cog, raw, driver="GTiff", TILED="YES", BLOCKXSIZE="512",
                         BLOCKYSIZE="512", COPY_SRC_OVERVIEWS="YES", BIGTIFF="IF_SAFER")
    with rasterio.open(cog) as dataset:
        raw_bytes = dataset.width * dataset.height * dataset.count * 2 * 4 / 3
    options = {
        "DEFLATE-6 (before)": {"COMPRESS": "DEFLATE", "LEVEL": "6", "PREDICTOR": "2"},
        "DEFLATE-1": {"COMPRESS": "DEFLATE", "LEVEL": "1", "PREDICTOR": "2"},
        "ZSTD-1": {"COMPRESS": "ZSTD", "LEVEL": "1", "PREDICTOR": "2"},
        "ZSTD-1, no predictor": {"COMPRESS": "ZSTD", "LEVEL": "1", "PREDICTOR": "1"},
        "ZSTD-3": {"COMPRESS": "ZSTD", "LEVEL": "3", "PREDICTOR": "2"},
        "ZSTD-9": {"COMPRESS": "ZSTD", "LEVEL": "9", "PREDICTOR": "2"},
        "LZW": {"COMPRESS": "LZW", "PREDICTOR": "2"},
    }
    rows = []
    from s2l8h.io.cog import gdal_cache_bytes

    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_bytes()):
        for name, option in options.items():
            target = workdir / "compressed.tif"
            started = time.perf_counter()
            rasterio.shutil.copy(raw, target, driver="COG", BLOCKSIZE="512",
                                 OVERVIEWS="FORCE_USE_EXISTING", NUM_THREADS="ALL_CPUS",
                                 BIGTIFF="IF_SAFER", **option)
            seconds = time.perf_counter() - started
            rows.append((name, seconds, raw_bytes / target.stat().st_size))
            target.unlink()
    raw.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, action="append",
                        help="output pixels (square); repeat (default 3000)")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--model-tiles", type=int, default=64,
                        help="at most this many tiles timed for the model-only figure")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--compression", action="store_true",
                        help="also time COG compression options on the first output")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--model", action="append",
                        help="model to run (repeat; default: the default model)")
    parser.add_argument("--compare-denoise", action="store_true",
                        help="also run harmonize --no-denoise (without the input noise filter)")
    args = parser.parse_args()
    sizes = args.size or [3000]
    from s2l8h.defaults import DEFAULT_MODEL

    names = args.model or [DEFAULT_MODEL]
    workdir = Path(tempfile.mkdtemp(prefix="s2l8h-e2e-", dir=args.workdir))
    from rio_cogeo.cogeo import cog_validate

    results = []
    try:
        for size in sizes:
            scene = workdir / f"scene-{size}"
            started = time.perf_counter()
            write_scene(scene, math.ceil(size / 3), math.ceil(size / 3))
            generated = time.perf_counter() - started
            variants = [[], ["--no-denoise"]] if args.compare_denoise else [[]]
            for name in names:
                # The networks alone, once per model: the same figure for each variant.
                model_seconds, tiles, timed = model_only(name, size, args.tile, args.overlap,
                                                         args.batch_size, args.model_tiles,
                                                         args.precision)
                for variant in variants:
                    output = workdir / f"out-{size}.tif"
                    run = end_to_end(scene, output, ["--model", name, "--tile", str(args.tile),
                                                     "--overlap", str(args.overlap),
                                                     "--batch-size", str(args.batch_size),
                                                     "--precision", args.precision, *variant])
                    valid, errors, warnings = cog_validate(str(output))
                    with rasterio.open(output) as dataset:
                        pixels = dataset.width * dataset.height
                        shape = f"{dataset.height} x {dataset.width} x {dataset.count}"
                    results.append((size, " ".join([name, *variant]), shape, pixels, tiles,
                                    timed, model_seconds, run, valid, errors + warnings,
                                    generated))
                    if args.compression and size == sizes[0] and name == names[0] \
                            and not variant:
                        compression = compression_table(output, workdir)
                    output.unlink()
            shutil.rmtree(scene)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"default model {DEFAULT_MODEL}; tile {args.tile}, overlap {args.overlap}, batch "
          f"{args.batch_size}, precision {args.precision}, {os.cpu_count()} CPUs")
    print("| model | output | tiles (timed) | model-only Mpx/s | end-to-end Mpx/s | ratio | "
          "wall s | start-up s | read | model | write | COG | peak RSS GiB | valid COG |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (_size, name, shape, pixels, tiles, timed, model_seconds, run, valid, problems,
         _generated) in results:
        model_rate = pixels / model_seconds / 1e6
        e2e_rate = pixels / run["wall"] / 1e6
        stages = run["stages"]
        shares = " | ".join(f"{100 * stages[key] / run['wall']:.0f} %"
                            for key in ("read", "model", "write", "cog"))
        print(f"| {name} | {shape} | {tiles} ({timed}) | {model_rate:.3f} | {e2e_rate:.3f} | "
              f"{e2e_rate / model_rate:.0%} | {run['wall']:.1f} | "
              f"{run['wall'] - run['inside']:.1f} | {shares} | {run['rss_gib']:.2f} | "
              f"{'yes' if valid and not problems else problems} |")
    print("stage shares: busy seconds of each stage / end-to-end wall time (read and write "
          "run in threads beside the model)")
    for size, name, *_rest, run, _valid, _problems, generated in results:
        print(f"  {size}, {name}: stages (s) {run['stages']}; input generated in "
              f"{generated:.1f} s")
    if args.compression:
        print("\nCOG driver from the uncompressed first output (overviews kept), "
              "all CPUs:")
        print("| compression | seconds | ratio |")
        print("|---|---|---|")
        for name, seconds, ratio in compression:
            print(f"| {name} | {seconds:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
