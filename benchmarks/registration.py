"""How well ``--reference`` registers a scene when the reference is not a clean same-date
image: clouds on it, another season's contrasts, a coarser band, noise.

A Landsat scene is simulated from the Sentinel-2 scene under the benchmark's ``realistic``
departures (noise, PSF, bandpass, Level-1 pan, atmosphere) with each of several band/truth
shifts; the reference is a Sentinel-2 band of the same area (e.g. B08, not a scored band),
as it is and perturbed: cumulus over 25 % of it, another season (each 300 m block's contrast
scaled by a random factor in -0.5 ... 1.5, so about a quarter of the blocks invert, as fields
harvested or grown do), averaged to 20 m, with noise of 10 % of its standard deviation, and
all of these together. For each pair it prints the measured shift, its error, the
correlation of the bands' fit with the reference before and after moving it, and whether it
was corrected (:func:`s2l8h.inference.coregister.register_scene`). One run, fixed seeds.

    python benchmarks/registration.py data/s2_l1c_virginia_north \\
        --reference data/reference/S2_L1C_virginia_north_B08.tif \\
        --bounds 435730,4169460,450730,4172470
"""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from scipy import ndimage

SHIFTS = ((9.0, -12.0), (-20.0, 7.0), (30.0, -40.0), (0.0, 0.0))


def read_band(path: Path, grid: GeoBox) -> np.ndarray:
    with rasterio.open(path) as dataset, WarpedVRT(
            dataset, crs=grid.crs.to_wkt(), transform=grid.affine, width=grid.width,
            height=grid.height, resampling=Resampling.nearest) as vrt:
        return vrt.read(1).astype(np.float64)


def perturbations(band: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """The reference as it is and perturbed (module docstring); digital numbers."""
    rng = np.random.default_rng(seed)
    rows, cols = band.shape
    field = ndimage.gaussian_filter(rng.normal(size=band.shape), 8)
    cloudy = np.where(field > np.quantile(field, 0.75), 6000.0, band)
    blocks = rng.uniform(-0.5, 1.5, (math.ceil(rows / 30), math.ceil(cols / 30)))
    gain = np.kron(blocks, np.ones((30, 30)))[:rows, :cols]
    mean = band.mean()
    season = np.clip(mean + gain * (band - mean), 1, None)
    coarse = np.kron(band[:rows // 2 * 2, :cols // 2 * 2].reshape(
        rows // 2, 2, cols // 2, 2).mean(axis=(1, 3)), np.ones((2, 2)))
    coarse = np.pad(coarse, ((0, rows - coarse.shape[0]), (0, cols - coarse.shape[1])),
                    mode="edge")
    noisy = np.clip(band + rng.normal(0, 0.1 * band.std(), band.shape), 1, None)
    together = np.clip(mean + gain * (coarse - mean), 1, None)
    together = np.where(field > np.quantile(field, 0.75), 6000.0, together)
    together = np.clip(together + rng.normal(0, 0.1 * band.std(), band.shape), 1, None)
    return {"as is": band, "cumulus 25 %": cloudy, "another season": season,
            "20 m": coarse, "noise 10 %": noisy, "all together": together}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sentinel2", type=Path)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--bounds", default=None, help="left,bottom,right,top")
    args = parser.parse_args()
    from s2l8h.data.simulate import CONDITIONS, simulate_landsat
    from s2l8h.inference.coregister import register_scene
    from s2l8h.io.sentinel2 import read_sentinel2

    grid = None
    if args.bounds:
        with rasterio.open(next(args.sentinel2.glob("*B02*"))) as dataset:
            crs = dataset.crs
        bounds = tuple(float(v) for v in args.bounds.split(","))
        grid = GeoBox.from_bbox(bounds, crs, resolution=10)
    reflectance, valid, grid = read_sentinel2(args.sentinel2, grid=grid)
    references = perturbations(read_band(args.reference, grid))
    print("| reference | true shift (m) | measured | error (m) | correlation before → after "
          "| corrected |")
    print("|---|---|---|---|---|---|")
    errors: dict[str, list[float]] = {name: [] for name in references}
    with tempfile.TemporaryDirectory(prefix="s2l8h-registration-") as folder:
        paths = {}
        for index, (name, image) in enumerate(references.items()):
            paths[name] = Path(folder) / f"reference-{index}.tif"
            with rasterio.open(paths[name], "w", driver="GTiff", width=grid.width,
                               height=grid.height, count=1, dtype="uint16", crs=grid.crs.wkt,
                               transform=grid.affine, nodata=0) as dataset:
                dataset.write(np.rint(np.clip(image, 1, 65535)).astype(np.uint16), 1)
        for shift in SHIFTS:
            degradation = replace(CONDITIONS["realistic"], shift_ms=shift)
            simulated = simulate_landsat(reflectance, valid, grid, degradation=degradation,
                                         seed=0)
            bands_valid = simulated.lowres_valid & \
                np.isfinite(simulated.multispectral).all(axis=0)
            for name, path in paths.items():
                found = register_scene(lambda s=simulated, v=bands_valid:
                                       (np.nan_to_num(s.multispectral), v),
                                       simulated.lowres_grid, str(path))
                if found.shift_m is None:
                    print(f"| {name} | {shift} | – | – | – | refused: {found.refused} |")
                    continue
                applied = found.corrected_m
                error = math.hypot(applied[0] - shift[0], applied[1] - shift[1])
                errors[name].append(error)
                status = "yes" if applied != (0.0, 0.0) else \
                    ("within 2 m" if not found.refused else f"no: {found.refused}")
                print(f"| {name} | {shift[0]:+.0f}, {shift[1]:+.0f} | "
                      f"{found.shift_m[0]:+.1f}, {found.shift_m[1]:+.1f} | {error:.1f} | "
                      f"{found.correlation_before:.3f} → {found.correlation_after:.3f} | "
                      f"{status} |")
    print()
    for name, found_errors in errors.items():
        print(f"{name}: largest error left after registration "
              f"{max(found_errors):.1f} m over {len(found_errors)} shifts")


if __name__ == "__main__":
    main()
