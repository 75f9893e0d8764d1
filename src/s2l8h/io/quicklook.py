"""A PNG quicklook: Landsat input RGB, harmonized RGB, and uncertainty, same stretch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from s2l8h.io.cog import MASK_FLAGGED, MASK_NODATA
from s2l8h.io.landsat import LandsatScene, read_reflectance

#: PNG ``Software`` text of every quicklook (how a rerun recognises its own file).
QUICKLOOK_SOFTWARE = "s2l8h quicklook"
FLAGGED_COLOUR = (1.0, 0.0, 1.0, 1.0)  # magenta
NODATA_COLOUR = (0.6, 0.6, 0.6, 1.0)  # grey


def is_own_quicklook(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a PNG written by :func:`write_quicklook`."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return str(image.info.get("Software", "")).startswith(QUICKLOOK_SOFTWARE)
    except OSError:
        return False


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
    mask = data[names.index("mask")].filled(0) if "mask" in names else None
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
    if mask is not None:  # flagged and no-data pixels in colours a legend explains
        overlay = np.zeros((*mask.shape, 4))
        overlay[mask == MASK_FLAGGED] = FLAGGED_COLOUR
        overlay[mask == MASK_NODATA] = NODATA_COLOUR
        axes[1].imshow(overlay, interpolation="nearest")
        handles = [Patch(color=FLAGGED_COLOUR, label="flagged by the quality band (mask 2)"),
                   Patch(color=NODATA_COLOUR, label="no data (mask 0)")]
        axes[1].legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.12),
                       ncol=2, fontsize="small", frameon=False)
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
    from s2l8h import __version__

    # The panels keep their aspect, so the constrained layout can leave the legend below the
    # figure's edge: a tight bounding box keeps every artist in the PNG.
    figure.savefig(partial, dpi=110, format="png", bbox_inches="tight", pad_inches=0.1,
                   metadata={"Software": f"{QUICKLOOK_SOFTWARE} {__version__}"})
    os.replace(partial, path)
    return path
