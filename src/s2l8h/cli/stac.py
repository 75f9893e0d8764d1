"""``s2l8h search`` and ``s2l8h pairs``: STAC catalogues."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from s2l8h.cli._common import console, fail
from s2l8h.errors import CatalogError, S2L8HError

if TYPE_CHECKING:
    from s2l8h.data import stac

# s2l8h.data.stac (pystac, rasterio, odc-geo) loads inside the commands, so that `s2l8h --help`
# is fast; these mirror its USGS_LANDSATLOOK and EARTH_SEARCH collections (a test keeps them
# equal).
LANDSAT_L2, LANDSAT_L1, SENTINEL2 = "landsat-c2l2-sr", "landsat-c2l1", "sentinel-2-l2a"


def _aoi(text: str) -> tuple[float, float, float, float]:
    """west,south,east,north (lon/lat) or a GeoJSON file (its bounding box)."""
    path = Path(text)
    if path.is_file():
        try:
            document = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            fail(f"{path}: not a readable GeoJSON file ({error})")
        coordinates: list[tuple[float, float]] = []

        def walk(node) -> None:
            if isinstance(node, list) and node and isinstance(node[0], int | float):
                coordinates.append((float(node[0]), float(node[1])))
            elif isinstance(node, list):
                for child in node:
                    walk(child)
            elif isinstance(node, dict):
                for key in ("features", "geometry", "coordinates", "geometries"):
                    if key in node:
                        walk(node[key])

        walk(document)
        if not coordinates:
            fail(f"{path}: no coordinates in the GeoJSON")
        xs, ys = zip(*coordinates, strict=True)
        return min(xs), min(ys), max(xs), max(ys)
    try:
        values = tuple(float(value) for value in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[0] >= values[2] or values[1] >= values[3]:
        fail(f"AOI must be west,south,east,north in degrees or a GeoJSON file, got {text!r}")
    return values  # type: ignore[return-value]


def _catalogs(landsat_url: str | None, landsat_l2: str, landsat_l1: str,
              sentinel2_url: str | None, sentinel2: str, sign: str | None,
              requester_pays: bool) -> list[stac.Catalog]:
    from s2l8h.data import stac

    signer = None
    if sign == "planetary-computer":
        try:
            import planetary_computer
        except ImportError:
            fail("--sign planetary-computer needs the planetary-computer package")
        signer = planetary_computer.sign_inplace
    elif sign:
        fail(f"unknown signer {sign!r} (planetary-computer)")
    landsat = stac.Catalog(landsat_url or stac.USGS_LANDSATLOOK.url, landsat_l2=landsat_l2,
                           landsat_l1=landsat_l1 or None, sign=signer,
                           requester_pays=requester_pays)
    sentinel = stac.Catalog(sentinel2_url or stac.EARTH_SEARCH.url, sentinel2=sentinel2,
                            sign=signer)
    if landsat.url == sentinel.url:
        return [stac.Catalog(landsat.url, landsat_l2, landsat_l1 or None, sentinel2,
                             sign=signer, requester_pays=requester_pays)]
    return [landsat, sentinel]


CATALOG_OPTIONS = {
    "landsat_url": typer.Option(None, help="Landsat STAC API (default: USGS LandsatLook)."),
    "landsat_l2": typer.Option(LANDSAT_L2, help="Landsat C2 L2 SR."),
    "landsat_l1": typer.Option(LANDSAT_L1, help="Landsat C2 L1."),
    "sentinel2_url": typer.Option(None, help="Sentinel-2 STAC API (default: Earth Search)."),
    "sentinel2": typer.Option(SENTINEL2, help="Sentinel-2 L2A."),
    "sign": typer.Option(None, help="URL signer: planetary-computer."),
    "requester_pays": typer.Option(False, help="Requester-pays S3 access for assets."),
}


def search_command(
    aoi: str = typer.Argument(..., help="west,south,east,north (degrees) or a GeoJSON file."),
    start: str = typer.Option(..., help="Start date, YYYY-MM-DD."),
    end: str = typer.Option(..., help="End date, YYYY-MM-DD."),
    max_cloud: float = typer.Option(None, help="Maximum scene cloud cover, percent."),
    output_dir: Path = typer.Option(Path("s2l8h-search"), "-o", "--output-dir"),
    landsat_url: str = CATALOG_OPTIONS["landsat_url"],
    landsat_l2: str = CATALOG_OPTIONS["landsat_l2"],
    landsat_l1: str = CATALOG_OPTIONS["landsat_l1"],
    sentinel2_url: str = CATALOG_OPTIONS["sentinel2_url"],
    sentinel2: str = CATALOG_OPTIONS["sentinel2"],
    sign: str = CATALOG_OPTIONS["sign"],
    requester_pays: bool = CATALOG_OPTIONS["requester_pays"],
) -> None:
    """Search Landsat C2 L2 (+ matching L1) and Sentinel-2 L2A items; write items.csv and
    items.json."""
    from s2l8h.data import stac

    bbox = _aoi(aoi)
    catalogs = _catalogs(landsat_url, landsat_l2, landsat_l1, sentinel2_url, sentinel2, sign,
                         requester_pays)
    result = stac.search(bbox, start, end, max_cloud=max_cloud, catalogs=catalogs)
    table, collection = result.write(output_dir)
    console.print(f"{len(result.landsat)} Landsat (L1 matched: {len(result.landsat_l1)}), "
                  f"{len(result.sentinel2)} Sentinel-2 items; wrote {table} and {collection}")


def pairs_command(
    aoi: str = typer.Argument(..., help="west,south,east,north (degrees) or a GeoJSON file."),
    start: str = typer.Option(..., help="Start date, YYYY-MM-DD."),
    end: str = typer.Option(..., help="End date, YYYY-MM-DD."),
    max_cloud: float = typer.Option(None, help="Maximum scene cloud cover, percent."),
    max_days: int = typer.Option(0, help="Largest acquisition gap in days (0: same day)."),
    min_clear: float = typer.Option(0.0, help="Minimum clear fraction of the AOI (0-1)."),
    output: Path = typer.Option(Path("pairs.csv"), "-o", "--output"),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
    landsat_url: str = CATALOG_OPTIONS["landsat_url"],
    landsat_l2: str = CATALOG_OPTIONS["landsat_l2"],
    landsat_l1: str = CATALOG_OPTIONS["landsat_l1"],
    sentinel2_url: str = CATALOG_OPTIONS["sentinel2_url"],
    sentinel2: str = CATALOG_OPTIONS["sentinel2"],
    sign: str = CATALOG_OPTIONS["sign"],
    requester_pays: bool = CATALOG_OPTIONS["requester_pays"],
) -> None:
    """Landsat/Sentinel-2 pairs over the AOI with AOI-level valid/clear fractions (QA_PIXEL,
    SCL), as CSV."""
    from s2l8h.data import stac

    if output.exists() and not overwrite:
        fail(f"{output}: already exists; pass --overwrite")
    bbox = _aoi(aoi)
    catalogs = _catalogs(landsat_url, landsat_l2, landsat_l1, sentinel2_url, sentinel2, sign,
                         requester_pays)
    result = stac.search(bbox, start, end, max_cloud=max_cloud, catalogs=catalogs)
    import rasterio

    try:
        with rasterio.Env(**({"AWS_REQUEST_PAYER": "requester"} if requester_pays else {})):
            pairs = stac.find_pairs(result, bbox, max_days=max_days, min_clear=min_clear)
    except S2L8HError:
        raise
    except OSError as error:  # an asset could not be read over the network
        raise CatalogError(f"reading the quality assets failed ({error}); run again") \
            from error
    partial = output.with_name(f".{output.name}.partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=stac.PAIR_COLUMNS)
        writer.writeheader()
        for pair in pairs:
            writer.writerow(pair.row())
    partial.replace(output)
    console.print(f"{len(pairs)} pair(s); wrote {output}")


def build_dataset_command(
    aoi: str = typer.Argument(..., help="west,south,east,north (degrees) or a GeoJSON file."),
    start: str = typer.Option(..., help="Start date, YYYY-MM-DD."),
    end: str = typer.Option(..., help="End date, YYYY-MM-DD."),
    output_dir: Path = typer.Option(..., "-o", "--output-dir", help="Dataset folder."),
    max_cloud: float = typer.Option(None, help="Maximum scene cloud cover, percent."),
    max_days: int = typer.Option(0, help="Largest acquisition gap in days (0: same day)."),
    min_clear: float = typer.Option(0.5, help="Minimum clear fraction of the AOI (0-1)."),
    size: int = typer.Option(32, help="Patch size in 30 m pixels (Sentinel-2 patch: 3x)."),
    stride: int = typer.Option(16, help="Patch stride in 30 m pixels."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    landsat_url: str = CATALOG_OPTIONS["landsat_url"],
    landsat_l2: str = CATALOG_OPTIONS["landsat_l2"],
    landsat_l1: str = CATALOG_OPTIONS["landsat_l1"],
    sentinel2_url: str = CATALOG_OPTIONS["sentinel2_url"],
    sentinel2: str = CATALOG_OPTIONS["sentinel2"],
    sign: str = CATALOG_OPTIONS["sign"],
    requester_pays: bool = CATALOG_OPTIONS["requester_pays"],
) -> None:
    """Search, pair, load and cut real Landsat/Sentinel-2 pairs into a patch dataset;
    resumable (rerun the same command after an interruption)."""
    from s2l8h.data import stac
    from s2l8h.data.build import build_pair_dataset

    bbox = _aoi(aoi)
    catalogs = _catalogs(landsat_url, landsat_l2, landsat_l1, sentinel2_url, sentinel2, sign,
                         requester_pays)
    result = stac.search(bbox, start, end, max_cloud=max_cloud, catalogs=catalogs)
    try:
        pairs = stac.find_pairs(result, bbox, max_days=max_days, min_clear=min_clear)
        if not pairs:
            fail("no Landsat/Sentinel-2 pair passes the filters")
        counts = build_pair_dataset(pairs, bbox, output_dir, size=size, stride=stride,
                                    requester_pays=requester_pays, progress=not quiet)
    except S2L8HError:
        raise
    except OSError as error:  # an asset could not be read over the network
        raise CatalogError(f"reading assets failed ({error}); the pairs done so far are "
                           "kept: run the same command again to resume") from error
    console.print(f"wrote {output_dir} from {len(pairs)} pair(s): "
                  + ", ".join(f"{k} {v}" for k, v in counts.items()) + " patches")


def reference_command(
    aoi: str = typer.Argument(..., help="west,south,east,north (degrees) or a GeoJSON file."),
    start: str = typer.Option(..., help="Start date, YYYY-MM-DD."),
    end: str = typer.Option(..., help="End date, YYYY-MM-DD."),
    output: Path = typer.Option(Path("reference.tif"), "-o", "--output"),
    max_cloud: float = typer.Option(None, help="Maximum scene cloud cover, percent."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
    sentinel2_url: str = CATALOG_OPTIONS["sentinel2_url"],
    sentinel2: str = CATALOG_OPTIONS["sentinel2"],
    sign: str = CATALOG_OPTIONS["sign"],
) -> None:
    """A co-registration reference for harmonize --reference: the clearest Sentinel-2 L2A
    item over the AOI (its SCL), its 10 m NIR band over the AOI with the not-clear pixels as
    no data."""
    from s2l8h.data import stac

    bbox = _aoi(aoi)
    catalog = _catalogs(None, "", "", sentinel2_url, sentinel2, sign, False)[-1]
    catalog = stac.Catalog(catalog.url, sentinel2=catalog.sentinel2, sign=catalog.sign)
    result = stac.search(bbox, start, end, max_cloud=max_cloud, catalogs=[catalog])
    try:
        item, clear = stac.clearest_sentinel2(result.sentinel2, bbox)
        path = stac.write_reference(item, bbox, output, overwrite=overwrite)
    except S2L8HError:
        raise
    except OSError as error:  # an asset could not be read over the network
        raise CatalogError(f"reading the Sentinel-2 assets failed ({error}); run again") \
            from error
    console.print(f"{item.id} ({clear:.0%} of the AOI clear); wrote {path}")
