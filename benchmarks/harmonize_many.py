"""Throughput of ``harmonize_many`` with 1 and 2 dask workers on the same scenes.

Simulates ``--scenes`` Landsat-8 scenes from shifted ``--size`` x ``--size`` px (10 m) crops of
the Virginia Sentinel-2 example (``data/s2_l1c_virginia_north``), then harmonizes them all
onto one AOI grid with the demo model (``lite``) on a LocalCluster of 1 worker process and,
into a fresh folder, of 2 worker processes (1 thread each, 1 PyTorch thread per task), and
prints scenes/s, output Mpx/s, the 2-worker / 1-worker ratio measured in this run, and the
peak resident memory of each worker process (``ru_maxrss``: includes importing PyTorch).
Cluster start-up is not timed; model loading (once per worker) is.

    nice -n 10 python benchmarks/harmonize_many.py --scenes 8 --size 600
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from pathlib import Path

from affine import Affine
from odc.geo.geobox import GeoBox

from s2l8h.batch import harmonize_many
from s2l8h.data.simulate import simulate_landsat, write_simulated_scene
from s2l8h.io.sentinel2 import read_sentinel2

VIRGINIA = Path(__file__).parents[1] / "data" / "s2_l1c_virginia_north"


def make_scenes(folder: Path, count: int, size: int) -> tuple[list[Path], GeoBox]:
    folders = []
    for index in range(count):
        x0, y0 = 438730 + 60 * index, 4176460 - 30 * index
        crop = GeoBox((size, size), Affine(10, 0, x0, 0, -10, y0), "EPSG:32618")
        reflectance, valid, grid = read_sentinel2(VIRGINIA, grid=crop)
        simulated = simulate_landsat(reflectance, valid, grid, seed=index)
        scene, _ = write_simulated_scene(simulated, folder / f"scene{index}",
                                         date=f"2023{1 + index // 28:02d}{1 + index % 28:02d}")
        folders.append(scene)
    margin = 60 * count + 300  # inside every crop
    left, top = 438730 + margin, 4176460 - margin
    side = 10 * size - 2 * margin
    grid = GeoBox.from_bbox((left, top - side, left + side, top), "EPSG:32618", resolution=10)
    return folders, grid


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(folders: list[Path], grid: GeoBox, workers: int, output: Path) -> dict:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        started = time.perf_counter()
        result = harmonize_many(folders, output, grid, scheduler=client, torch_threads=1,
                                progress=False, catalog=False)
        seconds = time.perf_counter() - started
        memory = sorted(client.run(peak_rss_mib).values())
    if result.count("done") != len(folders):
        raise RuntimeError(f"{result.count('failed')} scene(s) failed: {result.manifest}")
    return {"seconds": seconds, "memory": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--size", type=int, default=600, help="crop side, 10 m pixels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="s2l8h-bench-many-") as folder:
        folder = Path(folder)
        folders, grid = make_scenes(folder, args.scenes, args.size)
        pixels = args.scenes * grid.height * grid.width / 1e6
        one = run(folders, grid, 1, folder / "out1")
        two = run(folders, grid, 2, folder / "out2")
    print("| measure | 1 worker | 2 workers |\n|---|---|---|")
    print(f"| scenes (output {grid.height} x {grid.width} px each) | {args.scenes} | "
          f"{args.scenes} |")
    print(f"| wall time, s | {one['seconds']:.1f} | {two['seconds']:.1f} |")
    print(f"| scenes/s | {args.scenes / one['seconds']:.2f} | "
          f"{args.scenes / two['seconds']:.2f} |")
    print(f"| output Mpx/s | {pixels / one['seconds']:.3f} | {pixels / two['seconds']:.3f} |")
    print(f"| peak RSS per worker, MiB | {', '.join(f'{m:.0f}' for m in one['memory'])} | "
          f"{', '.join(f'{m:.0f}' for m in two['memory'])} |")
    print(f"\nthroughput ratio 2 workers / 1 worker: {one['seconds'] / two['seconds']:.2f}")


if __name__ == "__main__":
    main()
