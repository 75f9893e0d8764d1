"""Throughput, peak memory and tiling overhead of the tiled harmonize runner.

Writes a generated Landsat Collection-2 L2 scene (SR bands, QA_PIXEL, pan, MTL) of
``--size`` output pixels square at 10 m, runs ``s2l8h.harmonize`` on it with a small UNet in a
child process (so its peak RSS is its own), and compares tiled against one forward pass on the
same pixels of a region that fits in memory. Prints one table; all figures from this run.

    python benchmarks/tiled_inference.py --size 6000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine

SMALL = {"depth": 3, "growth_factor": 4}
ORIGIN = (600015.0, 5400015.0)


def small_model(seed: int = 0):
    from s2l8h import create_model

    torch.manual_seed(seed)
    return create_model("unet5-upsample", **SMALL).eval()


def write_scene(folder: Path, rows: int, cols: int) -> None:
    """A smooth random reflectance field, written block by block (bounded memory)."""
    folder.mkdir(parents=True, exist_ok=True)
    product = "LC08_L2SP_001001_20230101_20230102_02_T1"
    l1 = "LC08_L1TP_001001_20230101_20230102_02_T1"
    profile = {"driver": "GTiff", "dtype": "uint16", "crs": "EPSG:32632", "nodata": 0,
               "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    transform = Affine(30, 0, ORIGIN[0], 0, -30, ORIGIN[1])
    block = 512
    names = [f"{product}_SR_B{n}.TIF" for n in range(2, 8)] + [f"{product}_QA_PIXEL.TIF"]
    outputs = [rasterio.open(folder / name, "w", width=cols, height=rows, count=1,
                             transform=transform, **profile) for name in names]
    pan = rasterio.open(folder / f"{l1}_B8.TIF", "w", width=2 * cols, height=2 * rows, count=1,
                        transform=Affine(15, 0, ORIGIN[0], 0, -15, ORIGIN[1]), **profile)
    rng = np.random.default_rng(0)
    for row0 in range(0, rows, block):
        height = min(block, rows - row0)
        yy, xx = np.mgrid[row0:row0 + height, 0:cols]
        window = rasterio.windows.Window(0, row0, cols, height)
        reflectance = []
        for band in range(6):
            value = 0.08 + 0.04 * band + 0.05 * np.sin(xx / 17 + band) * np.cos(yy / 23) + \
                0.01 * rng.random(xx.shape)
            reflectance.append(value)
            outputs[band].write(np.rint((value + 0.2) / 2.75e-5).astype(np.uint16), 1,
                                window=window)
        outputs[6].write(np.full(xx.shape, 21824, dtype=np.uint16), 1, window=window)
        pan_value = np.kron(np.mean(reflectance[:3], axis=0), np.ones((2, 2)))
        pan.write(np.rint((pan_value + 0.1) / 2e-5).astype(np.uint16), 1,
                  window=rasterio.windows.Window(0, 2 * row0, 2 * cols, 2 * height))
    for dataset in [*outputs, pan]:
        dataset.close()
    rescaling = {f"REFLECTANCE_{kind}_BAND_{b}": value for b in range(1, 10)
                 for kind, value in (("MULT", "2.0000E-05"), ("ADD", "-0.100000"))}
    mtl = {"LANDSAT_METADATA_FILE": {
        "PRODUCT_CONTENTS": {"LANDSAT_PRODUCT_ID": l1, "PROCESSING_LEVEL": "L1TP"},
        "IMAGE_ATTRIBUTES": {"SPACECRAFT_ID": "LANDSAT_8", "DATE_ACQUIRED": "2023-01-01",
                             "SUN_ELEVATION": "45.0"},
        "LEVEL1_RADIOMETRIC_RESCALING": rescaling}}
    (folder / f"{l1}_MTL.json").write_text(json.dumps(mtl))


def _harmonize_child(scene: str, output: str, tile: int, overlap: int, threads: int,
                     queue) -> None:
    from s2l8h import harmonize, save_pretrained

    torch.set_num_threads(threads)
    model_dir = Path(output).parent / "small-model"
    save_pretrained(small_model(), model_dir, overwrite=True)
    started = time.perf_counter()
    result = harmonize(scene, output, models=[str(model_dir)], tile=tile, overlap=overlap,
                       batch_size=1, progress=False, overwrite=True)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"seconds": seconds, "peak_rss_gib": peak_kib / 2**20,
               "pixels": result.grid.height * result.grid.width, "tiles": result.tiles})


def overhead(region: int, tile: int, overlap: int, repeats: int = 2) -> dict[str, float]:
    """Tiled (with blending) vs one forward pass over the same ``region``² output pixels."""
    from s2l8h.inference.tiling import predict_array
    from s2l8h.inference.uncertainty import make_predictor

    model = small_model()
    predictor = make_predictor([model])
    lowres = region // 3 // 4 * 4  # a multiple of the model's alignment: no padding
    rng = np.random.default_rng(1)
    multispectral = (0.1 + 0.2 * rng.random((6, lowres, lowres))).astype(np.float32)
    pan = (0.1 + 0.2 * rng.random((1, 2 * lowres, 2 * lowres))).astype(np.float32)
    whole_times, tiled_times = [], []
    with torch.no_grad():
        for _ in range(repeats):
            started = time.perf_counter()
            whole = model(torch.from_numpy(multispectral)[None],
                          torch.from_numpy(pan)[None])[0].numpy()
            whole_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            tiled, _ = predict_array(predictor, multispectral, pan, tile=tile, overlap=overlap,
                                     batch_size=1)
            tiled_times.append(time.perf_counter() - started)
    return {"whole_s": min(whole_times), "tiled_s": min(tiled_times),
            "max_abs_difference": float(np.abs(tiled - whole).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=6000, help="scene size, output px (10 m)")
    parser.add_argument("--tile", type=int, default=1024, help="tile size, output px")
    parser.add_argument("--overlap", type=int, default=64, help="overlap, output px")
    parser.add_argument("--region", type=int, default=2040,
                        help="side of the region for the overhead comparison, output px")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from s2l8h.models import get_spec, macs_per_output_pixel

    spec = get_spec("unet5-upsample")
    macs = macs_per_output_pixel("unet", {**spec.config, **SMALL}, spec.convention)
    with tempfile.TemporaryDirectory() as workdir:
        scene = Path(workdir) / "scene"
        lowres = args.size // 3
        started = time.perf_counter()
        write_scene(scene, lowres, lowres)
        print(f"generated {lowres} x {lowres} px Landsat scene in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
        queue = multiprocessing.get_context("spawn").Queue()
        child = multiprocessing.get_context("spawn").Process(
            target=_harmonize_child,
            args=(str(scene), str(Path(workdir) / "out.tif"), args.tile, args.overlap,
                  args.threads, queue))
        child.start()
        run = queue.get()
        child.join()
    comparison = overhead(args.region, args.tile, args.overlap)
    rows = [
        ("model", f"UNet depth {SMALL['depth']}, growth {SMALL['growth_factor']} "
                  f"({macs / 1e3:.1f} k MACs/output px)"),
        ("threads", str(args.threads)),
        ("scene (output px, 10 m)", f"{args.size} x {args.size}"),
        ("tile / overlap (output px)", f"{args.tile} / {args.overlap}"),
        ("tiles", str(run["tiles"])),
        ("harmonize wall time (read, infer, COG)", f"{run['seconds']:.1f} s"),
        ("throughput", f"{run['pixels'] / run['seconds'] / 1e6:.3f} Mpx/s"),
        ("peak RSS of the harmonize process", f"{run['peak_rss_gib']:.2f} GiB"),
        (f"one forward, {args.region}² px", f"{comparison['whole_s']:.2f} s"),
        (f"tiled + blended, same {args.region}² px", f"{comparison['tiled_s']:.2f} s"),
        ("tiling overhead (tiled / forward - 1)",
         f"{100 * (comparison['tiled_s'] / comparison['whole_s'] - 1):.1f} %"),
        ("max |tiled - forward|", f"{comparison['max_abs_difference']:.2e}"),
    ]
    width = max(len(name) for name, _ in rows)
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
