"""``s2l8h evaluate`` and ``s2l8h benchmark``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import typer
from rich.table import Table

from s2l8h.cli._common import console, fail
from s2l8h.cli.harmonize import EXPECTED_ERRORS, _parse_bounds

# Mirrors s2l8h.evaluate.baselines.BASELINES (kept equal by a test); the evaluate package
# (SciPy, PyTorch) loads inside the commands.
BASELINES = ("nearest", "bilinear", "bicubic", "lanczos", "brovey", "gsa", "hpf", "mtf-glp")


def _metrics_table(results: dict[str, dict[str, float]]) -> Table:
    keys = {key for values in results.values() for key in values}
    table = Table(title="metrics (reflectance, data range 1; indices data range 2)")
    table.add_column("")
    columns = [k for k in ("psnr", "ssim", "nrmse", "rmse", "mae", "sam", "ergas", "pearson")
               if k in keys]
    for key in columns:
        table.add_column(key)
    for name, values in results.items():
        if name == "uncertainty":
            continue
        table.add_row(name, *[f"{values[k]:.4f}" if k in values else "" for k in columns])
    return table


def evaluate_command(
    prediction: Path = typer.Argument(..., help="Harmonized raster (e.g. from s2l8h harmonize)."),
    reference: Path = typer.Argument(..., help="Reference raster with B02…B12 (6 bands)."),
    mask: Path = typer.Option(None, help="Raster on the reference grid; 0 = leave out."),
    json_out: Path = typer.Option(None, "--json", help="Write the metrics as JSON."),
    csv_out: Path = typer.Option(None, "--csv", help="Write the metrics as CSV."),
    overwrite: bool = typer.Option(False, help="Replace existing JSON/CSV files."),
) -> None:
    """Score a prediction against a reference: per band and overall PSNR, SSIM, NRMSE, RMSE,
    MAE, SAM, ERGAS, NDVI/NDWI agreement, and uncertainty metrics when σ bands exist."""
    for path in (json_out, csv_out):
        if path is not None and path.exists() and not overwrite:
            fail(f"{path}: already exists; pass --overwrite")
    try:
        from s2l8h.evaluate.benchmark import evaluate_files

        results = evaluate_files(prediction, reference, mask)
    except EXPECTED_ERRORS as error:
        fail(error)
    console.print(_metrics_table(results))
    if "uncertainty" in results:
        console.print("uncertainty: " + ", ".join(
            f"{key} {value:.4f}" for key, value in results["uncertainty"].items()))
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=2) + "\n")
    if csv_out is not None:
        with csv_out.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["group", "metric", "value"])
            for group, values in results.items():
                for key, value in values.items():
                    writer.writerow([group, key, value])


def benchmark_command(
    sentinel2: list[Path] = typer.Argument(..., help="Sentinel-2 folder or band files."),
    output_dir: Path = typer.Option(Path("s2l8h-benchmark"), "-o", "--output-dir"),
    model: list[str] = typer.Option(
        None, "--model", "-m",
        help="Model name/path to run; repeat for several; 'a+b' is an ensemble of a and b."),
    baselines: str = typer.Option("all", help=f"'all', 'none' or a list of {', '.join(BASELINES)}"),
    bounds: str = typer.Option(None, help="left,bottom,right,top crop of the scene (CRS units)."),
    offset: float = typer.Option(0.0, help="Sentinel-2 DN offset (-1000 from baseline 04.00)."),
    platform: str = typer.Option("S2A", help="S2A | S2B bandpass coefficients."),
    noise: float = typer.Option(0.0, help="Gaussian noise std added to the simulation."),
    shift: str = typer.Option("0,0", help="dx,dy sub-pixel shift of the simulation (m)."),
    uncertainty: str = typer.Option("auto", help="Uncertainty method for the models."),
    overwrite: bool = typer.Option(False, help="Replace earlier results in the folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Simulate Landsat from Sentinel-2, run models and baselines on the same pixels, write
    results.md/.csv/.json and report.html."""
    chosen = list(BASELINES) if baselines == "all" else [] if baselines == "none" else \
        [name.strip() for name in baselines.split(",") if name.strip()]
    try:
        dx, dy = (float(value) for value in shift.split(","))
    except ValueError:
        fail(f"--shift must be dx,dy in metres, got {shift!r}")
    from s2l8h.evaluate.benchmark import run_benchmark

    try:
        result = run_benchmark(sentinel2 if len(sentinel2) > 1 else sentinel2[0], output_dir,
                               models=model or (), baselines=chosen,
                               bounds=_parse_bounds(bounds), offset=offset, platform=platform,
                               noise_std=noise, shift_m=(dx, dy), uncertainty=uncertainty,
                               overwrite=overwrite, progress=not quiet)
    except EXPECTED_ERRORS as error:
        fail(error)
    console.print(result.markdown_table())
    console.print(f"wrote {output_dir}/results.md, results.csv, results.json, report.html")
