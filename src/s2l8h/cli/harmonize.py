"""``s2l8h harmonize`` and ``s2l8h demo``."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

from s2l8h.cli._common import console, error_console, fail
from s2l8h.defaults import DEFAULT_MODEL

# PyTorch, rasterio and SciPy load inside the commands, so that `s2l8h --help` is fast; these
# mirror s2l8h.inference.harmonize.DEFAULT_MODELS, s2l8h.io.quality.FLAGS/DEFAULT_MASK_FLAGS
# and s2l8h.inference.tiling.PRECISIONS (a test keeps them equal).
DEFAULT_MODELS = (DEFAULT_MODEL,)
FLAGS = ("fill", "dilated_cloud", "cirrus", "cloud", "shadow", "snow", "water", "saturated")
DEFAULT_MASK_FLAGS = ("cloud", "dilated_cloud", "shadow")
PRECISIONS = ("fp32", "bf16", "fp16")


def show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Print the user-facing warnings (``UserWarning`` and subclasses: TOA mode, stale
    temporary folders ...) once each; dependencies' deprecation notices (``DeprecationWarning``
    and the ``UserWarning`` subclasses some name so, as shapely's ``ShapelyDeprecationWarning``)
    are not for users."""
    seen = set()
    for warning in caught:
        text = str(warning.message)
        if issubclass(warning.category, UserWarning) and text not in seen \
                and "Deprecation" not in warning.category.__name__:
            seen.add(text)
            error_console.print(f"[yellow]warning:[/yellow] {text}", highlight=False)


class ShownWarnings:
    """A context that records every warning given inside it and, on leaving (an error
    included), shows them as :func:`show_warnings` does, each once however often it is
    entered (``shown`` holds what it showed)."""

    def __init__(self) -> None:
        self.shown: set[str] = set()

    def __enter__(self) -> ShownWarnings:
        self._context = warnings.catch_warnings(record=True)
        self._caught = self._context.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._context.__exit__(*exc_info)
        show_warnings([w for w in self._caught if str(w.message) not in self.shown])
        self.shown.update(str(w.message) for w in self._caught)


def pixel_shares_text(shares: dict[str, float]) -> str:
    """The output's pixel shares (:func:`s2l8h.io.cog.mask_shares`) in words, with what
    nodata means where the grid has any."""
    text = (f"{100 * shares['valid']:.1f} % valid, {100 * shares['flagged']:.1f} % flagged by "
            f"the quality band, {100 * shares['nodata']:.1f} % no data")
    if shares["nodata"] >= 0.001:
        text += " (outside the scene's footprint, or its fill)"
    return text


def mask_flags(text: str) -> tuple[str, ...]:
    """The quality flags of a comma-separated ``--mask`` (empty: none), each once."""
    return tuple(dict.fromkeys(flag.strip() for flag in text.split(",") if flag.strip()))


def _parse_bounds(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(value) for value in text.replace(" ", "").split(","))
    except ValueError:
        fail(f"--bounds must be left,bottom,right,top numbers, got {text!r}")
    if len(values) != 4 or values[0] >= values[2] or values[1] >= values[3]:
        fail(f"--bounds must be left,bottom,right,top with left<right and bottom<top: {text!r}")
    return values  # type: ignore[return-value]


def harmonize_command(
    inputs: list[Path] = typer.Argument(..., help="Scene folder, or the scene's files."),
    output: Path = typer.Option(..., "-o", "--output", help="Output COG path."),
    model: list[str] = typer.Option(
        None, "--model", "-m",
        help=f"Registered name, weights folder/file or hub id; repeat for an ensemble; "
             f"'published' for the four published UNets (default: {', '.join(DEFAULT_MODELS)})."),
    uncertainty: str = typer.Option(
        "auto", help="auto | ensemble | mc-dropout | head | none"),
    mc_passes: int = typer.Option(20, help="Passes for --uncertainty mc-dropout."),
    dropout: float = typer.Option(
        None, help="Dropout probability to switch on in the model(s) (for MC dropout)."),
    tile: int = typer.Option(512, help="Tile size in output pixels."),
    overlap: int = typer.Option(64, help="Tile overlap in output pixels."),
    batch_size: int = typer.Option(4, help="Tiles per forward pass."),
    like: Path = typer.Option(None, help="Write exactly on this raster's grid."),
    crs: str = typer.Option(None, help="Output CRS (e.g. EPSG:32632); default the scene's."),
    bounds: str = typer.Option(None, help="left, bottom, right, top in the output CRS, "
                               "comma-separated."),
    resolution: float = typer.Option(
        None, help="Output resolution in CRS units (default 10 m; in a geographic CRS such as "
                   "EPSG:4326, 10 m in degrees)."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N | mps"),
    threads: int = typer.Option(None, help="CPU threads for PyTorch (1 or more)."),
    dtype: str = typer.Option(
        "uint16", help="uint16: DN = (reflectance + 0.1) x 10000, sigma x 10000, 0 nodata "
                       "(scale/offset tagged) | float32: reflectance, NaN nodata"),
    mask: str = typer.Option(
        ",".join(DEFAULT_MASK_FLAGS),
        show_default=False,
        help=f"Quality flags that mark pixels (mask 2, nodata), comma-separated: any of "
             f"{', '.join(FLAGS)}; empty for none (default: {', '.join(DEFAULT_MASK_FLAGS)})."),
    keep_flagged: bool = typer.Option(False, help="Keep values on flagged pixels."),
    toa: bool = typer.Option(False, help="Allow a Level-1-only scene (TOA reflectance)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
    precision: str = typer.Option(
        "fp32", help=f"Model arithmetic: {' | '.join(PRECISIONS)} (bf16/fp16: automatic mixed "
                     "precision, faster where the CPU/GPU has it, not bit-exact)."),
    register_pan: bool = typer.Option(
        True, help="Measure the pan's shift against the bands and correct it when above 2 m "
                   "(--no-register-pan: measure and report only)."),
    pan_blocks: bool = typer.Option(
        True, help="Measure and correct the pan's shift block by block (4.8 km) as the scene "
                   "is read: on real Landsat it varies across a scene (--no-pan-blocks: one "
                   "shift for the scene)."),
    reference: Path = typer.Option(
        None, help="A Sentinel-2 band or stack of the scene's area (any date, L1C or L2A): "
                   "measure the whole scene's shift against it and correct it when above 2 m "
                   "and at most 60 m (co-registration to the Sentinel-2 geometry, as HLS "
                   "does)."),
    consistency: bool = typer.Option(
        True, help="Make the output consistent with the 30 m input: seen through the Landsat "
                   "PSF and bandpass it gives the input back, each band's level included, "
                   "up to the input's noise (with --denoise, the filtered input's; "
                   "--no-consistency: the network's raw output, its detail still shrunk "
                   "against the input's noise unless --no-denoise)."),
    filter_input_noise: bool = typer.Option(
        True, "--denoise/--no-denoise",
        help="Filter the 30 m bands' and the pan's noise (non-local means against each "
             "tile's own noise, at least twice OLI's) before the networks, make the "
             "output consistent with the filtered bands and shrink its finer-than-30 m "
             "detail where it is no larger than that noise: output noise in flat areas "
             "below the input's (--no-denoise: the networks and the consistency step see "
             "the input as it is, and the detail stays)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Harmonize a Landsat-8/9 scene into a Sentinel-2-like 10 m COG with uncertainty."""
    from s2l8h.inference.harmonize import harmonize
    from s2l8h.inference.options import HarmonizeOptions

    options = HarmonizeOptions(
        models=model or None, uncertainty=uncertainty, like=like, crs=crs,
        bounds=_parse_bounds(bounds), resolution=resolution, tile=tile, overlap=overlap,
        batch_size=batch_size, device=device, threads=threads, dtype=dtype,
        mask_flags=mask_flags(mask), keep_flagged=keep_flagged, toa=toa, mc_passes=mc_passes,
        dropout=dropout, overwrite=overwrite, progress=not quiet, precision=precision,
        register_pan=register_pan, pan_blocks=pan_blocks, reference=reference,
        consistency=consistency, filter_input_noise=filter_input_noise)
    with ShownWarnings():
        result = harmonize(inputs if len(inputs) > 1 else inputs[0], output, options)
    console.print(f"wrote {result.path} ({result.grid.height} x {result.grid.width} px, "
                  f"{len(result.models)} model(s), uncertainty: {result.uncertainty}, "
                  f"{result.tiles} tiles, {result.seconds:.1f} s)")
    console.print(f"pixels: {pixel_shares_text(result.extra['mask_shares'])}")
    stages = result.extra.get("stage_seconds", {})
    if stages:  # busy seconds; reading and writing overlap the model
        console.print("stages (s): " + ", ".join(f"{name} {seconds:.2f}"
                                                 for name, seconds in stages.items()))


def demo_command(
    output_dir: Path = typer.Option(Path("s2l8h-demo"), "-o", "--output-dir",
                                    help="Folder for harmonized.tif and quicklook.png."),
    overwrite: bool = typer.Option(False, help="Replace earlier demo outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run the whole path on the bundled Landsat-8 crop; write a COG and a PNG quicklook."""
    from s2l8h.demo import run_demo

    with ShownWarnings():
        result, png = run_demo(output_dir, overwrite=overwrite, progress=not quiet)
    console.print(f"[bold]{result.extra['label']}[/bold]")
    console.print(f"wrote {result.path} and {png} ({result.seconds:.1f} s)")
    console.print(f"pixels: {pixel_shares_text(result.extra['mask_shares'])}")
