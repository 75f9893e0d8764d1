"""A PNG quicklook: Landsat input RGB, harmonized RGB, and uncertainty, same stretch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from matplotlib.figure import Figure

from s2l8h.io.landsat import LandsatScene, read_reflectance


def _stretch(rgb: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip((rgb - low) / (high - low), 0, 1)


def write_quicklook(scene: LandsatScene, harmonized: str | os.PathLike[str],
                    path: str | os.PathLike[str], title: str = "") -> Path:
    """Three panels: the Landsat RGB (30 m), the harmonized RGB (10 m) with the same 2-98 %
    stretch, and the mean standard deviation over the six bands (if written)."""
    rescaling = scene.multispectral_rescaling()
    sources = scene.multispectral_sources()
    landsat_rgb = np.dstack([read_reflectance(*sources[index], *rescaling[index])
                             for index in (2, 1, 0)])
    with rasterio.open(harmonized) as dataset:
        names = list(dataset.descriptions)
        data = dataset.read(masked=True).astype(np.float64)
        scales, offsets = np.array(dataset.scales), np.array(dataset.offsets)
        data = data * scales[:, None, None] + offsets[:, None, None]
    rgb = np.ma.dstack([data[names.index(band)] for band in ("B04", "B03", "B02")])
    finite = landsat_rgb[np.isfinite(landsat_rgb)]
    low, high = np.percentile(finite, [2, 98]) if finite.size else (0.0, 0.3)
    std_bands = [index for index, name in enumerate(names) if name.endswith("_std")]
    panels = 3 if std_bands else 2
    figure = Figure(figsize=(5 * panels, 5.4), layout="constrained")
    axes = figure.subplots(1, panels)
    axes[0].imshow(_stretch(np.nan_to_num(landsat_rgb), low, high), interpolation="nearest")
    axes[0].set_title("Landsat input (30 m) RGB")
    axes[1].imshow(_stretch(rgb.filled(0), low, high), interpolation="nearest")
    axes[1].set_title("Sentinel-2-like output (10 m) RGB")
    if std_bands:
        std = np.ma.mean(data[std_bands], axis=0)
        high = float(np.percentile(std.compressed(), 99)) if std.count() else 1.0
        image = axes[2].imshow(std, cmap="magma", interpolation="nearest", vmin=0, vmax=high)
        axes[2].set_title("uncertainty: mean σ (reflectance, 0-99th percentile)")
        figure.colorbar(image, ax=axes[2], shrink=0.8)
    for axis in axes:
        axis.set_axis_off()
    if title:
        figure.suptitle(title)
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial.png")
    figure.savefig(partial, dpi=110, format="png")
    os.replace(partial, path)
    return path
