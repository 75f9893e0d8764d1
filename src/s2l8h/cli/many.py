"""``s2l8h harmonize-many``: many scenes over an AOI on dask.distributed."""

from __future__ import annotations

from pathlib import Path

import typer

from s2l8h.cli._common import console, error_console, fail
from s2l8h.cli.harmonize import (
    DEFAULT_MASK_FLAGS,
    DEFAULT_MODELS,
    FLAGS,
    ShownWarnings,
    mask_flags,
)
from s2l8h.cli.stac import CATALOG_OPTIONS, _catalogs


def harmonize_many_command(
    folders: list[Path] = typer.Argument(None, help="Local scene folders."),
    output_dir: Path = typer.Option(..., "-o", "--output-dir",
                                    help="Folder for <scene>.tif, manifests and stac/."),
    aoi: str = typer.Option(None, help="west,south,east,north (degrees) or a GeoJSON file."),
    items: Path = typer.Option(None, help="A STAC ItemCollection file (s2l8h search's "
                                          "items.json)."),
    search: bool = typer.Option(False, "--search", help="Search a STAC API over the AOI."),
    start: str = typer.Option(None, help="With --search: start date, YYYY-MM-DD."),
    end: str = typer.Option(None, help="With --search: end date, YYYY-MM-DD."),
    max_cloud: float = typer.Option(None, help="With --search: maximum scene cloud cover, %."),
    landsat_url: str = CATALOG_OPTIONS["landsat_url"],
    landsat_l2: str = CATALOG_OPTIONS["landsat_l2"],
    landsat_l1: str = CATALOG_OPTIONS["landsat_l1"],
    sentinel2_url: str = CATALOG_OPTIONS["sentinel2_url"],
    sentinel2: str = CATALOG_OPTIONS["sentinel2"],
    sign: str = CATALOG_OPTIONS["sign"],
    requester_pays: bool = CATALOG_OPTIONS["requester_pays"],
    crs: str = typer.Option(None, help="Output CRS (default: the AOI's UTM zone)."),
    resolution: float = typer.Option(
        None, help="Output resolution in CRS units (default 10 m; in a geographic CRS such "
                   "as EPSG:4326, 10 m in degrees; not with --like)."),
    like: Path = typer.Option(None, help="Write exactly on this raster's grid."),
    model: list[str] = typer.Option(
        None, "--model", "-m", help=f"As for harmonize (default: {', '.join(DEFAULT_MODELS)})."),
    uncertainty: str = typer.Option("auto", help="auto | ensemble | mc-dropout | head | none"),
    mc_passes: int = typer.Option(20, help="Passes for --uncertainty mc-dropout."),
    dropout: float = typer.Option(None, help="Dropout probability to switch on (MC dropout)."),
    tile: int = typer.Option(512, help="Tile size in output pixels."),
    overlap: int = typer.Option(64, help="Tile overlap in output pixels."),
    batch_size: int = typer.Option(4, help="Tiles per forward pass."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N | mps"),
    torch_threads: int = typer.Option(
        None, help="PyTorch threads per task, harmonize's --threads (default: cores / "
                   "local worker threads)."),
    dtype: str = typer.Option(
        "uint16", help="As for harmonize: uint16: DN = (reflectance + 0.1) x 10000, sigma x "
                       "10000, 0 nodata | float32: reflectance, NaN nodata"),
    mask: str = typer.Option(",".join(DEFAULT_MASK_FLAGS),
                             help=f"Quality flags that mark pixels: any of {', '.join(FLAGS)}."),
    keep_flagged: bool = typer.Option(False, help="Keep values on flagged pixels."),
    toa: bool = typer.Option(False, help="Allow Level-1-only scenes (TOA reflectance)."),
    pan_blocks: bool = typer.Option(
        True, help="As harmonize: the pan's shift measured and corrected block by block "
                   "(--no-pan-blocks: one shift per scene)."),
    filter_input_noise: bool = typer.Option(
        True, "--denoise/--no-denoise", help="Filter the input's noise before the networks, as "
                                             "harmonize does (--no-denoise: not)."),
    reference: Path = typer.Option(
        None, help="A Sentinel-2 band or stack over the AOI (any date): register every scene "
                   "to it before harmonizing, as harmonize --reference does, so that a "
                   "season's products share the Sentinel-2 geometry."),
    reference_search: bool = typer.Option(
        False, "--reference-search",
        help="With --search or --items: make that reference from the Sentinel-2 L2A items "
             "(--search: of the same dates in --sentinel2-url; --items: of the collection), "
             "the clearest over the AOI as s2l8h reference makes it, written to "
             "OUTPUT_DIR/reference/<item id>.tif; a rerun uses the one there without a "
             "search."),
    workers: int = typer.Option(2, help="LocalCluster worker processes."),
    threads_per_worker: int = typer.Option(1, help="LocalCluster threads per worker."),
    scheduler: str = typer.Option(None, help="Address of a running dask scheduler "
                                             "(instead of a LocalCluster)."),
    retries: int = typer.Option(2, help="Retries of a failed scene before it is reported."),
    overwrite: bool = typer.Option(False, help="Replace outputs made with other provenance."),
    no_catalog: bool = typer.Option(False, "--no-catalog", help="Do not write stac/."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Harmonize many scenes onto one grid over an AOI, one dask task per scene; skip scenes
    already done; write a manifest and a STAC catalogue of the products."""
    from s2l8h.batch import (
        aoi_grid,
        harmonize_many,
        parse_aoi,
        scenes_from_folders,
        scenes_from_item_collection,
        scenes_from_search,
    )
    from s2l8h.data import stac
    from s2l8h.inference.options import HarmonizeOptions

    chosen = [bool(folders), items is not None, search]
    if sum(chosen) != 1:
        fail("give exactly one source: scene folders, --items or --search")
    if search and not (start and end):
        fail("--search needs --start and --end")
    if reference_search and (reference is not None or folders):
        fail("--reference-search needs --search or --items (Sentinel-2 items to choose the "
             "reference from), and no --reference")
    if aoi is None and (like is None or not folders):
        fail("--aoi is needed (west,south,east,north in degrees or a GeoJSON file)")
    region = parse_aoi(aoi) if aoi is not None else None
    grid = aoi_grid(region, crs=crs, resolution=resolution, like=like)
    if folders:
        scenes = scenes_from_folders(folders)
    else:
        catalog = _catalogs(landsat_url, landsat_l2, landsat_l1, None, "", sign,
                            requester_pays)[0]
        catalog = stac.Catalog(catalog.url, catalog.landsat_l2, catalog.landsat_l1,
                               sign=catalog.sign, requester_pays=requester_pays)
        if items is not None:
            scenes = scenes_from_item_collection(items, region, sign=catalog.sign)
        else:
            scenes = scenes_from_search(region, start, end, catalog, max_cloud=max_cloud)
    if not scenes:
        fail("no Landsat scene to harmonize over the AOI")
    if reference_search:
        reference = _season_reference(region, output_dir, items, start, end, max_cloud,
                                      sentinel2_url, sentinel2, sign)
    options = HarmonizeOptions(
        models=model or None, uncertainty=uncertainty, tile=tile, overlap=overlap,
        batch_size=batch_size, device=device, dtype=dtype, mask_flags=mask_flags(mask),
        keep_flagged=keep_flagged, toa=toa, mc_passes=mc_passes, dropout=dropout,
        filter_input_noise=filter_input_noise, reference=reference, pan_blocks=pan_blocks)
    with ShownWarnings():  # shown on an error too
        result = harmonize_many(
            scenes, output_dir, grid, options, torch_threads=torch_threads, workers=workers,
            threads_per_worker=threads_per_worker, scheduler=scheduler, retries=retries,
            requester_pays=requester_pays, overwrite=overwrite, catalog=not no_catalog,
            progress=not quiet, log=console.print)
    for row in result.rows:
        if row["status"] == "failed":
            error_console.print(f"[red]failed:[/red] {row['scene']}: {row['error']}",
                                highlight=False)
    if result.count("failed"):
        raise typer.Exit(1)


def _season_reference(region, output_dir: Path, items: Path | None, start: str | None,
                      end: str | None, max_cloud: float | None, sentinel2_url: str | None,
                      sentinel2: str, sign: str | None) -> Path:
    """``--reference-search``: the reference of :func:`s2l8h.data.stac.season_reference`
    from the collection's Sentinel-2 items, or from a search of the same dates."""
    import pystac
    import rasterio
    import rasterio.errors
    from rasterio.warp import transform_bounds

    from s2l8h.data import stac
    from s2l8h.errors import CatalogError, S2L8HError

    folder = Path(output_dir) / "reference"
    made = sorted(folder.glob("*.tif")) if folder.is_dir() else []
    if len(made) > 1:
        fail(f"{folder}: holds {len(made)} references; keep the one to use, or remove them all "
             "to choose again")
    bbox = tuple(region.boundingbox)
    if made:  # an earlier run's: reused without a search, so its products stay done
        with rasterio.open(made[0]) as dataset:
            left, bottom, right, top = transform_bounds("EPSG:4326", dataset.crs, *bbox)
            covers = dataset.bounds.left <= left and dataset.bounds.right >= right and \
                dataset.bounds.bottom <= bottom and dataset.bounds.top >= top
        if not covers:
            fail(f"{made[0]}: an earlier run's reference does not cover this AOI; remove it "
                 "to choose another, or choose another output folder")
        console.print(f"reference: {made[0]} (made by an earlier run)")
        return made[0]
    catalog = _catalogs(None, "", "", sentinel2_url, sentinel2, sign, False)[-1]
    if items is not None:
        candidates = list(pystac.ItemCollection.from_file(str(items)))
        if catalog.sign:
            candidates = [catalog.sign(item) or item for item in candidates]
    else:
        catalog = stac.Catalog(catalog.url, sentinel2=catalog.sentinel2, sign=catalog.sign)
        candidates = stac.search(bbox, start, end, max_cloud=max_cloud,
                                 catalogs=[catalog]).sentinel2
    try:
        path, item, clear = stac.season_reference(candidates, bbox, folder)
    except S2L8HError:
        raise
    except (OSError, rasterio.errors.RasterioError) as error:  # an asset could not be read
        raise CatalogError(f"reading the Sentinel-2 assets failed ({error}); run again") \
            from error
    console.print(f"reference: {item.id} ({clear:.0%} of the AOI clear), {path}")
    return path
