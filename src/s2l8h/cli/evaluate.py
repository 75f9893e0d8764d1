"""``s2l8h evaluate`` and ``s2l8h benchmark``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.table import Table

from s2l8h.cli._common import console, fail, print_table
from s2l8h.cli.harmonize import ShownWarnings, _parse_bounds

# Mirror s2l8h.evaluate.baselines.BASELINES, s2l8h.data.simulate.CONDITIONS and
# s2l8h.evaluate.benchmark.EDGE_MARGIN (kept equal by a test); the evaluate package (SciPy,
# PyTorch) loads inside the commands.
BASELINES = ("nearest", "bilinear", "bicubic", "lanczos", "brovey", "gsa", "hpf", "mtf-glp")
CONDITIONS = ("clean", "noise-oli", "noise-3x", "noise-0.001", "noise-0.002", "misregistration",
              "psf-sharper", "psf-blurrier", "bandpass-s2b", "bandpass-s2c", "l1-pan",
              "pan-shift", "atmosphere", "realistic")
EDGE_MARGIN = 6


def _metrics_table(results: dict[str, dict[str, float]]) -> Table:
    from s2l8h.evaluate.benchmark import format_cell

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
        # empty where a group has no such metric, "–" where it was not measured (NaN)
        table.add_row(name, *["" if values.get(k) is None else format_cell(values[k], 4)
                              for k in columns])
    return table


def evaluate_command(
    prediction: Path = typer.Argument(..., help="Harmonized raster (e.g. from s2l8h harmonize)."),
    reference: Path = typer.Argument(
        ..., help="Reference raster with B02, B03, B04, B8A, B11, B12 (6 bands)."),
    mask: Path = typer.Option(None, help="Raster on the reference grid; 0 = leave out."),
    json_out: Path = typer.Option(None, "--json", help="Write the metrics as JSON."),
    csv_out: Path = typer.Option(None, "--csv", help="Write the metrics as CSV."),
    margin: int = typer.Option(
        0, help=f"Leave out this border (px) of the reference grid; s2l8h benchmark leaves "
                f"out {EDGE_MARGIN}, so --margin {EDGE_MARGIN} scores its pixels."),
    warp: bool = typer.Option(
        False, help="Warp a prediction on another grid onto the reference's (bilinear); "
                    "without it, another grid is an error."),
    overwrite: bool = typer.Option(False, help="Replace existing JSON/CSV files."),
) -> None:
    """Score a prediction against a reference: per band and overall PSNR, SSIM, NRMSE, RMSE,
    MAE, SAM, ERGAS, NDVI/NDWI agreement, and uncertainty metrics when σ bands exist."""
    from s2l8h.evaluate.benchmark import evaluate_files, write_csv, write_json
    from s2l8h.io.cog import check_not_an_input, check_output_path

    inputs = [path for path in (prediction, reference, mask) if path is not None]
    for path in (json_out, csv_out):
        if path is not None:
            check_output_path(path, overwrite)
            check_not_an_input(path, inputs)
    results = evaluate_files(prediction, reference, mask, margin=margin, warp=warp)
    print_table(_metrics_table(results))
    if "uncertainty" in results:
        console.print("uncertainty: " + ", ".join(
            f"{key} {value:.4f}" for key, value in results["uncertainty"].items()))
    if json_out is not None:
        write_json(json_out, results)
    if csv_out is not None:
        write_csv(csv_out, [{"group": group, "metric": key, "value": value}
                            for group, values in results.items()
                            for key, value in values.items()])


def benchmark_command(
    sentinel2: list[Path] = typer.Argument(
        ..., help="Sentinel-2 folder or band files (with --real: a Landsat scene)."),
    output_dir: Path = typer.Option(Path("s2l8h-benchmark"), "-o", "--output-dir"),
    model: list[str] = typer.Option(
        None, "--model", "-m",
        help="Model name/path to run; repeat for several; 'a+b' is an ensemble of a and b."),
    baselines: str = typer.Option("all", help=f"'all', 'none' or a list of {', '.join(BASELINES)}"),
    bounds: str = typer.Option(None, help="left, bottom, right, top crop of the scene (CRS units, "
                         "comma-separated)."),
    offset: float = typer.Option(0.0, help="Sentinel-2 DN offset (-1000 from baseline 04.00)."),
    b08_as_b8a: bool = typer.Option(
        False, "--b08-as-b8a", help="A Sentinel-2 scene without B8A: its B08 (broad NIR, 10 m) "
        "stands in as the NIR truth."),
    platform: str = typer.Option("S2A", help="S2A | S2B bandpass coefficients."),
    noise: float = typer.Option(0.0, help="Gaussian noise std added to the simulation."),
    shift: str = typer.Option("0,0", help="dx,dy sub-pixel shift of the simulation (m)."),
    real: bool = typer.Option(
        False, "--real", help="The input is a real Landsat scene: reduced-resolution (Wald) "
        "protocol (bands and pan degraded 3x, scored against the real 30 m bands)."),
    toa: bool = typer.Option(False, "--toa", help="With --real: a Level-1 scene in TOA mode."),
    conditions: str = typer.Option(
        None, help="Named conditions, comma-separated, or 'all': "
        f"{', '.join(CONDITIONS)}. One table per condition (replaces --noise/--shift)."),
    uncertainty: str = typer.Option("auto", help="Uncertainty method for the models."),
    consistency: bool = typer.Option(
        True, help="Make the models' outputs consistent with their input, as harmonize does "
                   "(--no-consistency: the networks' raw output)."),
    filter_input_noise: bool = typer.Option(
        True, "--denoise/--no-denoise", help="Filter the 30 m bands' and the pan's noise "
                    "before the networks, as harmonize does (--no-denoise: not)."),
    reference: Path = typer.Option(
        None, help="A raster in the Sentinel-2 geometry that is not a scored band (e.g. the "
                   "scene's B08): register the simulated Landsat scene to it before every "
                   "method runs, as harmonize --reference does (not with --real)."),
    overwrite: bool = typer.Option(False, help="Replace earlier results in the folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Simulate Landsat from Sentinel-2, run models and baselines on the same pixels, write
    results.md/.csv/.json and report.html; with --conditions, under each named departure of
    real Landsat from the clean simulation (noise, PSF, misregistration, bandpass, Level-1
    pan, atmosphere, all together as 'realistic')."""
    chosen = list(BASELINES) if baselines == "all" else [] if baselines == "none" else \
        [name.strip() for name in baselines.split(",") if name.strip()]
    try:
        dx, dy = (float(value) for value in shift.split(","))
    except ValueError:
        fail(f"--shift must be dx,dy in metres, got {shift!r}")
    from s2l8h.evaluate.benchmark import BenchmarkOptions, run_benchmark, run_conditions

    source = sentinel2 if len(sentinel2) > 1 else sentinel2[0]
    if real:
        from s2l8h.evaluate.wald import run_wald

        if reference is not None:
            fail("--reference registers a simulated scene to the Sentinel-2 geometry; with "
                 "--real the truth is the scene's own bands, nothing to register to")

        result = run_wald(source, output_dir, models=model or (), baselines=chosen, toa=toa,
                          bounds=_parse_bounds(bounds), uncertainty=uncertainty,
                          consistency=consistency, filter_input_noise=filter_input_noise,
                          overwrite=overwrite)
        console.print(result.markdown_table())
        console.print(f"wrote {output_dir}/results.md, results.csv, results.json, report.html")
        return
    options = BenchmarkOptions(models=model or (), baselines=chosen,
                               bounds=_parse_bounds(bounds), offset=offset,
                               b08_as_b8a=b08_as_b8a, uncertainty=uncertainty,
                               consistency=consistency, filter_input_noise=filter_input_noise,
                               reference=reference, overwrite=overwrite, progress=not quiet)
    if conditions:
        suite = run_conditions(source, output_dir,
                               [name.strip() for name in conditions.split(",")], options)
        console.print(suite.summary_table())
        console.print(f"wrote {output_dir}/results.md, results.csv, results.json, report.html")
        return
    result = run_benchmark(source, output_dir, options, platform=platform, noise_std=noise,
                           shift_m=(dx, dy))
    console.print(result.markdown_table())
    console.print(f"wrote {output_dir}/results.md, results.csv, results.json, report.html")


def qa_command(
    outputs: list[Path] = typer.Argument(
        ..., help="A harmonized raster, or several, or folders of them (searched with their "
        "subfolders, e.g. harmonize-many's): one row each."),
    scene: list[Path] = typer.Option(
        None, "--scene", help="The Landsat scene (folder or files) to compute the "
        "consistency against; default: the checks harmonize wrote into the tags."),
    toa: bool = typer.Option(False, "--toa", help="With --scene: a Level-1 scene (TOA mode)."),
    json_out: Path = typer.Option(None, "--json", help="Write the report as JSON."),
    overwrite: bool = typer.Option(False, help="Replace an existing JSON file."),
) -> None:
    """The trust report of a product: pan registration and noise of its inputs, and the
    output's consistency with them (brought back to 30 m and OLI radiometry: per-band bias
    and RMSE, spectral angle, residual shift). Several products or a folder (a season): one
    row each, to see which to trust; a folder's rasters without s2l8h's tags are left out
    (named); --json then holds {"products": {path: report}}."""
    from s2l8h.evaluate.benchmark import write_json
    from s2l8h.evaluate.qa import (
        consistency_with_scene,
        pixel_percentages,
        read_report,
        recorded_for_scene,
        report_messages,
    )
    from s2l8h.inference.checks import (
        MIN_CHECK_SPAN,
        consistency_judged,
        consistency_messages,
    )
    from s2l8h.io.cog import check_not_an_input, check_output_path
    from s2l8h.io.landsat import open_scene

    season = len(outputs) > 1 or any(output.is_dir() for output in outputs)
    if season and scene:
        fail("--scene compares one product with its scene; give one product")
    products = _products(outputs)
    scene_inputs = (scene if len(scene) > 1 else scene[0]) if scene else None
    caught = ShownWarnings()
    if json_out is not None:
        check_output_path(json_out, overwrite)
        with caught:
            scene_files = open_scene(scene_inputs, toa=toa, need_pan=False).files() \
                if scene_inputs else []
        check_not_an_input(json_out, [*products, *(scene or []), *scene_files])
    if season:
        reports = _season_reports(products, [o for o in outputs if not o.is_dir()])
        _season_table(reports)
        if json_out is not None:
            write_json(json_out, {"products": reports})
        return
    output = products[0]
    with caught:
        if scene_inputs:
            # The consistency measured here; what harmonize recorded besides, if it made the
            # product from this scene.
            measured = consistency_with_scene(output, scene_inputs, toa=toa)
            name = str(measured["scene"])
            recorded, made_from = recorded_for_scene(output, name)
            if "scene_shift" in recorded:  # the same shift, as the tags give it
                measured.pop("scene_shift_corrected_m", None)
            report = {**recorded, **measured}
            if "pixels_percent" not in report:  # read with the tags when made from it
                shares = pixel_percentages(output)
                if shares is not None:
                    report["pixels_percent"] = shares
            if made_from is not None and made_from != name:
                console.print(f"{output.name} was made from {made_from}, not from {name}: "
                              "only the consistency measured against the scene given is "
                              "shown", highlight=False)
        else:
            report = read_report(output)
    table = Table(title=f"trust report: {output.name}")
    table.add_column("check", no_wrap=True)
    table.add_column("value")
    for key, value in report.items():
        if key == "consistency" and isinstance(value, dict):
            for name, item in value.items():
                table.add_row(f"consistency {name}", json.dumps(item))
        else:
            table.add_row(key.replace("_", " "), json.dumps(value))
    print_table(table)
    messages = report_messages(report)
    for message in messages:
        if message not in caught.shown:  # the scene's own TOA warning, shown already
            console.print(f"[yellow]warning:[/yellow] {message}")
    consistency = report.get("consistency")
    if isinstance(consistency, dict) and not consistency_judged(consistency):
        rows, cols = consistency["span_px"]
        console.print(f"consistency: not judged: the pixels compared span only {rows} x "
                      f"{cols} 30 m pixels (rows x columns; {MIN_CHECK_SPAN} x "
                      f"{MIN_CHECK_SPAN} needed)", highlight=False)
    elif isinstance(consistency, dict) and not consistency_messages(consistency):
        console.print("consistency: the output agrees with its input (|bias| <= 0.01, "
                      "residual shift <= 6 m)" + (f"; see the {len(messages)} warning(s) above"
                                                  if messages else ""))
    if json_out is not None:
        write_json(json_out, report)


def _products(outputs: list[Path]) -> list[Path]:
    """``outputs`` with each folder replaced by the GeoTIFFs in it and its subfolders
    (sorted; hidden files and folders left out)."""
    products: list[Path] = []
    for output in outputs:
        if output.is_dir():
            # s2l8h writes .tif; Landsat's own band files (.TIF) are not products.
            found = sorted(path for path in output.rglob("*")
                           if path.suffix in (".tif", ".tiff") and path.is_file()
                           and not any(part.startswith(".")
                                       for part in path.relative_to(output).parts))
            if not found:
                fail(f"{output}: no GeoTIFF (*.tif, *.tiff) in this folder")
            products += found
        else:
            products.append(output)
    return products


def _season_reports(products: list[Path], named: list[Path]) -> dict[str, dict[str, object]]:
    """Each product's trust report by its path; a raster found in a folder without s2l8h's
    tags is left out and named (one the user ``named`` is an error)."""
    from s2l8h.evaluate.qa import read_report
    from s2l8h.io.errors import InputError

    reports, left_out = {}, []
    for product in products:
        try:
            reports[str(product)] = read_report(product)
        except InputError:
            if product in named:
                raise
            left_out.append(product)
    if left_out:
        console.print(f"left out {len(left_out)} raster(s) without s2l8h's tags: "
                      f"{', '.join(map(str, left_out))}", highlight=False)
    if not reports:
        fail("no s2l8h product among the rasters given")
    return reports


def _season_table(reports: dict[str, dict[str, object]]) -> None:
    """One row per product (:func:`s2l8h.evaluate.qa.summary_row`), then each product's
    warnings."""
    from s2l8h.evaluate.qa import report_messages, summary_row

    table = Table(title=f"trust report: {len(reports)} product(s)")
    common = os.path.commonpath([str(Path(path).resolve().parent) for path in reports])

    def name(path: str) -> str:  # the path below the products' common folder
        return os.path.relpath(Path(path).resolve(), common)

    for column in ("product", "pan shift m", "noise σ", "level shift", "bias", "SAM°",
                   "residual shift m", "geolocation", "valid %", "flagged %", "warnings"):
        table.add_column(column, no_wrap=column == "product")

    def cell(value: object, digits: int) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    for product, report in reports.items():
        row = summary_row(report)
        level = row["level_shift"]
        table.add_row(name(product), cell(row["pan_shift_m"], 1),
                      cell(row["input_noise"], 4),
                      "–" if level is None else f"{level['value']:+.4f} {level['band']}",
                      "–" if row["bias"] is None else f"{row['bias']:+.4f}",
                      cell(row["sam_degrees"], 2),
                      cell(row["shift_m"], 1), row["geolocation"] or "–",
                      cell(row["valid_percent"], 1), cell(row["flagged_percent"], 1),
                      str(row["warnings"]))
    print_table(table)
    for product, report in reports.items():
        for message in report_messages(report):
            console.print(f"[yellow]warning:[/yellow] {name(product)}: {message}")
