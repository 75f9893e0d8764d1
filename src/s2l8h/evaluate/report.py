"""A self-contained HTML report of a benchmark: tables and the figures a reviewer expects.

Figures: true-colour (B04/B03/B02) and false-colour (B8A/B04/B03) composites of the target and
every method with the same stretch; absolute-error maps (mean over bands, same colour scale);
per-band scatter density of prediction vs target; NDVI scatter; and, for methods with
uncertainty, the σ map and the calibration curve.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from s2l8h.evaluate.metrics import BANDS, calibration_curve, normalized_difference


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _composite(image: np.ndarray, bands: tuple[str, str, str], low: np.ndarray,
               high: np.ndarray) -> np.ndarray:
    stack = np.dstack([image[BANDS.index(band)] for band in bands])
    return np.clip((np.nan_to_num(stack) - low) / (high - low), 0, 1)


def _methods_to_show(result) -> list:
    models = [m for m in result.methods if m.kind == "model"]
    baselines = sorted((m for m in result.methods if m.kind == "baseline"),
                       key=lambda m: -m.metrics["overall"]["psnr"])
    chosen = [m for m in result.methods if m.name == "bicubic"]
    chosen += [m for m in baselines[:1] if m not in chosen]
    return chosen + models


def _composites_figure(result, bands: tuple[str, str, str], title: str) -> str:
    shown = _methods_to_show(result)
    target = result.target
    valid = result.valid
    reference = np.dstack([target[BANDS.index(band)][valid] for band in bands])
    low = np.percentile(reference, 2, axis=(0, 1))
    high = np.percentile(reference, 98, axis=(0, 1))
    panels = [("target (Sentinel-2)", target), *[(m.name, m.prediction) for m in shown]]
    figure = Figure(figsize=(4 * len(panels), 4.2), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (name, image) in zip(axes, panels, strict=True):
        axis.imshow(_composite(image, bands, low, high), interpolation="nearest")
        axis.set_title(name)
        axis.set_axis_off()
    figure.suptitle(title)
    return _png(figure)


def _error_figure(result) -> str:
    shown = _methods_to_show(result)
    errors = [np.where(result.valid, np.abs(m.prediction - result.target).mean(axis=0),
                       np.nan) for m in shown]
    high = max(float(np.nanpercentile(e[result.valid], 99)) for e in errors)
    figure = Figure(figsize=(4 * len(shown) + 1, 4.2), layout="constrained")
    axes = figure.subplots(1, len(shown), squeeze=False)[0]
    for axis, method, error in zip(axes, shown, errors, strict=True):
        image = axis.imshow(error, cmap="inferno", vmin=0,
                            vmax=high, interpolation="nearest")
        axis.set_title(f"|error| {method.name}")
        axis.set_axis_off()
    figure.colorbar(image, ax=axes.tolist(), shrink=0.8, label="mean |error| (reflectance)")
    return _png(figure)


def _scatter_figure(result, method) -> str:
    target, valid = result.target, result.valid
    figure = Figure(figsize=(16, 3.2), layout="constrained")
    axes = figure.subplots(1, 7)
    for index, band in enumerate(BANDS):
        x, y = target[index][valid], method.prediction[index][valid]
        high = float(np.percentile(x, 99.5)) * 1.1
        axes[index].hist2d(x, y, bins=120, range=[[0, high], [0, high]], cmin=1, cmap="viridis",
                               norm=LogNorm())
        axes[index].plot([0, high], [0, high], color="white", linewidth=0.7)
        axes[index].set_title(band)
        axes[index].set_xlabel("target")
    axes[0].set_ylabel(method.name)
    ndvi_target = normalized_difference(target[3], target[2])[valid]
    ndvi_prediction = normalized_difference(method.prediction[3], method.prediction[2])[valid]
    keep = np.isfinite(ndvi_target) & np.isfinite(ndvi_prediction)
    axes[6].hist2d(ndvi_target[keep], ndvi_prediction[keep], bins=120,
                   range=[[-1, 1], [-1, 1]], cmin=1, cmap="viridis", norm=LogNorm())
    axes[6].plot([-1, 1], [-1, 1], color="white", linewidth=0.7)
    axes[6].set_title("NDVI")
    return _png(figure)


def sigma_colour_range(sigma: np.ndarray) -> tuple[float, float]:
    """Colour limits of a σ map: its 1st and 99th percentiles, so a few pixels with a large σ
    (a cloud edge, a saturated pixel) do not paint the rest black."""
    finite = sigma[np.isfinite(sigma)]
    if not finite.size:
        return 0.0, 1.0
    low, high = (float(value) for value in np.percentile(finite, [1, 99]))
    return low, high if high > low else low + 1e-6


def _uncertainty_figure(result, method) -> str:
    target, valid = result.target, result.valid
    sigma = method.std.mean(axis=0)
    error = (method.prediction - target)[:, valid].ravel()
    std = method.std[:, valid].ravel()
    calibration = calibration_curve(error, np.maximum(std, 1e-6))
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    axes = figure.subplots(1, 2)
    low, high = sigma_colour_range(sigma[valid])
    image = axes[0].imshow(np.where(valid, sigma, np.nan), cmap="magma",
                           interpolation="nearest", vmin=low, vmax=high)
    axes[0].set_title(f"mean σ, {method.name} (1-99th percentile)")
    axes[0].set_axis_off()
    figure.colorbar(image, ax=axes[0], shrink=0.8)
    axes[1].plot([0, 1], [0, 1], "k--", linewidth=0.8, label="perfect calibration")
    axes[1].plot(calibration.levels, calibration.observed, "o-",
                 label=f"observed (ECE {calibration.expected_calibration_error:.3f})")
    axes[1].set_xlabel("expected coverage of the central interval")
    axes[1].set_ylabel("observed coverage")
    axes[1].legend()
    axes[1].set_title("calibration")
    return _png(figure)


def _figure_sections(result) -> list[str]:
    """Composites, error maps, scatter plots and uncertainty figures of one result."""
    true_colour = _composites_figure(result, ("B04", "B03", "B02"), "true colour B04/B03/B02")
    false_colour = _composites_figure(result, ("B8A", "B04", "B03"),
                                      "false colour B8A/B04/B03")
    sections = [
        "<h2>Composites</h2>",
        f'<img src="data:image/png;base64,{true_colour}">',
        f'<img src="data:image/png;base64,{false_colour}">',
        "<h2>Absolute error</h2>",
        f'<img src="data:image/png;base64,{_error_figure(result)}">',
        "<h2>Prediction vs target (density), per band and NDVI</h2>",
    ]
    for method in _methods_to_show(result):
        sections.append(f'<img src="data:image/png;base64,{_scatter_figure(result, method)}">')
    with_uncertainty = [m for m in result.methods if m.std is not None]
    if with_uncertainty:
        sections.append("<h2>Uncertainty</h2>")
        for method in with_uncertainty:
            sections.append(
                f'<img src="data:image/png;base64,{_uncertainty_figure(result, method)}">')
    return sections


def write_report(result, path: str | os.PathLike[str]) -> Path:
    """Write the report (figures embedded as PNG) to ``path`` atomically."""
    sections = ["<h2>Results</h2>", _markdown_to_html(result.markdown_table()),
                *_figure_sections(result)]
    return _write_document(path, html.escape(str(result.settings)), sections)


def write_conditions_report(suite, path: str | os.PathLike[str],
                            figures_for: tuple[str, ...] = ("clean", "realistic")) -> Path:
    """The report of a benchmark under several conditions: the PSNR summary, one table per
    condition, and the figures of the ``figures_for`` conditions (or of the first one)."""
    sections = ["<h2>PSNR (dB) per condition</h2>", _markdown_to_html(suite.summary_table())]
    for name, result in suite.results.items():
        sections += [f"<h2>{html.escape(name)}</h2>",
                     f"<p><code>{html.escape(str(result.settings['degradation']))}</code></p>",
                     _markdown_to_html(result.markdown_table())]
    shown = [name for name in figures_for if name in suite.results] or \
        [next(iter(suite.results))]
    for name in shown:
        sections += [f"<h2>Figures: {html.escape(name)}</h2>",
                     *_figure_sections(suite.results[name])]
    return _write_document(path, html.escape(str(suite.settings)), sections)


def _write_document(path: str | os.PathLike[str], settings: str, sections: list[str]) -> Path:
    path = Path(path)
    document = (
        "<!doctype html><html><head><meta charset='utf-8'><title>s2l8h benchmark</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1800px}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:3px 8px;"
        "text-align:right}img{max-width:100%;display:block;margin:1em 0}</style></head><body>"
        "<h1>s2l8h reduced-resolution benchmark</h1>"
        "<p>Landsat-8 simulated from the Sentinel-2 scene (HLS bandpass, MTF-matched Gaussian "
        "PSF, 30 m / 15 m area averaging on Landsat's grid); every method scored against the "
        f"Sentinel-2 scene on the same pixels.</p><p><code>{settings}</code></p>"
        + "\n".join(sections) + "</body></html>")
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(document)
    os.replace(partial, path)
    return path


def _markdown_to_html(table: str) -> str:
    lines = [line.strip().strip("|").split("|") for line in table.splitlines()]
    header, rows = lines[0], lines[2:]
    head = "".join(f"<th>{html.escape(cell.strip())}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell.strip())}</td>" for cell in row)
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
