"""Writing the harmonized image as a Cloud-Optimized GeoTIFF, row block by row block.

Band layout: B02, B03, B04, B8A, B11, B12 reflectance; then (when there is uncertainty) one
standard-deviation band per output band (``B02_std`` ...); then ``mask``: 0 no data, 1 valid,
2 flagged by the quality band (cloud, shadow, ... as configured).

Encodings:

- ``uint16`` (default): reflectance DN = round((ρ + 0.1) × 10000) (scale 1e-4, offset -0.1, the
  Sentinel-2 L2A convention since processing baseline 04.00, so small negative reflectances
  survive), clipped to 1..65535; standard deviation DN = round(σ × 10000) (scale 1e-4, offset 0),
  at least 1 on valid pixels (the quantization step); nodata 0 in every band.
- ``float32``: reflectance and σ as they are, NaN nodata; mask 0/1/2.

Rows are written to an uncompressed tiled GeoTIFF under a temporary folder next to the output
(GDAL's block cache is capped by the caller, see ``GDAL_CACHE_MB``), which is then
copied into a COG (``COMPRESSION``: ZSTD level 1 with horizontal differencing, chosen by
``benchmarks/end_to_end.py``; compressed on all cores; internal overviews by nearest neighbour
so they never mix valid and invalid pixels or mask classes) under a temporary name and renamed:
a failed run leaves no output file, and an existing file is only replaced with
``overwrite=True``.

Overviews cost no second pass: as rows arrive, the pixels GDAL's nearest-neighbour overview
picks (source index ``floor(i × size_above / size + 0.5)``, each level from the one above,
sizes halved down to one block, as GDAL's COG driver does) are written to a chain of external
overview files (``rows.tif.ovr``, ``rows.tif.ovr.ovr``, ...), which the COG driver copies as they
are. Full resolution and the first overview level are pixel for pixel what GDAL writes (tested);
for sizes that do not halve evenly GDAL sometimes takes a deeper level from the full resolution
instead of the level above, so a pixel of level 2 or deeper may come from a neighbouring pixel.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
import rasterio.shutil
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from rasterio.warp import reproject

from s2l8h.errors import S2L8HWarning, warn
from s2l8h.io.errors import InputError, OutputError

OutputDtype = Literal["uint16", "float32"]
REFLECTANCE_SCALE = 1e-4
REFLECTANCE_OFFSET = -0.1
STD_SCALE = 1e-4
MASK_NODATA, MASK_VALID, MASK_FLAGGED = 0, 1, 2
BLOCK = 512
#: GDAL warper threads and working memory (MB) for rows warped onto the output grid.
WARP_THREADS = max(1, os.cpu_count() or 1)
WARP_MEMORY_MB = 256
GDAL_CACHE_MB = 256  # GDAL_CACHEMAX while harmonizing: GDAL's default is 5 % of RAM
#: Creation options of the COG; lossless (see ``benchmarks/end_to_end.py --compression``).
COMPRESSION = {"COMPRESS": "ZSTD", "LEVEL": "1", "PREDICTOR": "2"}


def gdal_cache_bytes(megabytes: int = GDAL_CACHE_MB) -> int:
    """``GDAL_CACHEMAX`` for ``rasterio.Env``, which takes it in bytes (a bare 256 is 256 bytes
    there, and every block read is then a cache miss)."""
    return megabytes * 2**20


def mask_shares(path: str | os.PathLike[str], max_side: int = 2048) -> dict[str, float]:
    """The shares (0-1) of ``path``'s pixels that its ``mask`` band calls ``valid``,
    ``flagged`` (by the quality band) and ``nodata`` (outside the scene's data, or the
    input's fill). Read at most ``max_side`` pixels a side by nearest neighbour, from the
    COG's overviews where it has them: a share to about 0.1 %, not a pixel count."""
    try:
        with rasterio.open(path) as dataset:
            if "mask" not in dataset.descriptions:
                raise InputError(path, "has no band named 'mask' (not an s2l8h product)")
            factor = max(1, -(-max(dataset.height, dataset.width) // max_side))
            mask = dataset.read(dataset.descriptions.index("mask") + 1, out_shape=(
                -(-dataset.height // factor), -(-dataset.width // factor)),
                resampling=Resampling.nearest, masked=False)
    except rasterio.errors.RasterioIOError as error:
        raise InputError(path, f"not a readable raster ({error})") from None
    mask = np.nan_to_num(mask)  # float32 products keep the mask as 0/1/2 too
    counts = {name: int((mask == value).sum()) for name, value in (
        ("valid", MASK_VALID), ("flagged", MASK_FLAGGED), ("nodata", MASK_NODATA))}
    return {name: count / mask.size for name, count in counts.items()}


def mask_percentages(path: str | os.PathLike[str]) -> dict[str, float]:
    """:func:`mask_shares` in percent, to 0.1 (as ``qa`` and the catalogue give them)."""
    return {name: round(100 * share, 1) for name, share in mask_shares(path).items()}


def overview_sizes(height: int, width: int, block: int = BLOCK) -> list[tuple[int, int]]:
    """(height, width) of each overview level of the COG driver's ``OVERVIEWS=AUTO``: halved
    (rounding down) while the level above is larger than one block."""
    sizes = []
    while max(height, width) > block:
        height, width = height // 2, width // 2
        sizes.append((height, width))
    return sizes


def nearest_indices(size_above: int, size: int) -> np.ndarray:
    """Source index along one axis of each pixel of a nearest-neighbour overview of ``size``
    pixels built from a level of ``size_above`` pixels, as GDAL picks it."""
    return np.floor(np.arange(size) * (size_above / size) + 0.5).astype(np.intp)


def encode_reflectance(reflectance: np.ndarray, valid: np.ndarray,
                       out: np.ndarray | None = None) -> np.ndarray:
    """uint16 DN of reflectance; 0 where not ``valid``; into ``out`` if given."""
    scaled = np.nan_to_num(reflectance)  # a copy; the rest in place, same arithmetic
    scaled -= REFLECTANCE_OFFSET
    scaled /= REFLECTANCE_SCALE
    return _to_uint16(scaled, valid, out)


def encode_std(std: np.ndarray, valid: np.ndarray, out: np.ndarray | None = None
               ) -> np.ndarray:
    scaled = np.nan_to_num(std)
    scaled /= STD_SCALE
    return _to_uint16(scaled, valid, out)


def _to_uint16(scaled: np.ndarray, valid: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    np.rint(scaled, out=scaled)
    np.clip(scaled, 1, 65535, out=scaled)
    encoded = np.empty(scaled.shape, dtype=np.uint16) if out is None else out
    encoded[...] = scaled
    encoded[..., ~valid] = 0
    return encoded


def decode_reflectance(encoded: np.ndarray) -> np.ndarray:
    decoded = encoded.astype(np.float64) * REFLECTANCE_SCALE + REFLECTANCE_OFFSET
    return np.where(encoded == 0, np.nan, decoded)


def check_output_path(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Fail early if ``path`` exists (without ``overwrite``), is anything but a regular file
    (a device, a pipe, a symbolic link: never replaced, even with ``overwrite``) or its folder
    is not writable."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, expected an output file name")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise OutputError(f"{path}: is not a regular file (a device, pipe, socket or symbolic "
                          "link); s2l8h only writes regular files, choose another name")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists; pass --overwrite to replace it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    try:  # os.access is not enough (root, read-only mounts): really create a file
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise OutputError(f"{path}: folder {folder} is not writable ({error.strerror})") \
            from None
    return path


def check_not_an_input(path: str | os.PathLike[str],
                       inputs: Sequence[str | os.PathLike[str]]) -> None:
    """Refuse an output path that is one of the run's own inputs (even with overwrite)."""
    path = Path(path)
    target = path.resolve()
    for source in inputs:
        source = Path(source)
        same = path.exists() and source.exists() and os.path.samefile(path, source)
        if same or source.resolve() == target:
            raise OutputError(f"{path}: is one of this run's inputs ({source.name}); an output "
                              "is never written onto an input, choose another name")


def band_quantity(level: str) -> str:
    """What an output band holds, from the input's ``S2L8H_LEVEL`` tag: surface reflectance,
    or, from a Level-1 scene in TOA mode, reflectance that is not surface reflectance."""
    return "reflectance (from Level-1 TOA input, not surface reflectance)" if "TOA" in level \
        else "surface reflectance"


#: File inside each temporary folder naming the process that made it (to spot stale ones).
OWNER_FILE = "s2l8h-owner.json"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_workdirs(folder: str | os.PathLike[str], output: str | None = None
                          ) -> list[Path]:
    """Remove the temporary folders that killed s2l8h runs (``kill -9``, out of memory, power
    loss) left in ``folder``: those whose owner file names a process of this host that no
    longer runs (each removal is warned about). Folders of live runs are kept; so are those of
    other hosts, which cannot be checked: a warning names them where they were made for the
    file name ``output`` (any, without it). Other outputs' are left unmentioned: in a run of
    many scenes on many hosts they are the other scenes', being written. Returns the folders
    removed."""
    removed = []
    for candidate in Path(folder).glob(".*"):
        owner_path = candidate / OWNER_FILE
        if not candidate.is_dir() or not owner_path.is_file():
            continue
        try:
            owner = json.loads(owner_path.read_text())
            pid, host = int(owner["pid"]), str(owner["host"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if host == socket.gethostname() and not _process_alive(pid):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
            warn(f"removed {candidate}: temporary folder left by an interrupted s2l8h run "
                 f"(process {pid})", StaleTemporaryWarning, stacklevel=2)
        elif host != socket.gethostname() and output in (None, owner.get("output")):
            warn(f"{candidate}: temporary folder of an s2l8h run on host {host} "
                 f"(process {pid}); remove it if that run is over", StaleTemporaryWarning,
                 stacklevel=2)
    return removed


class StaleTemporaryWarning(S2L8HWarning):
    """A temporary folder of an earlier, killed run was found (and removed if it was ours)."""


class CogWriter:
    """Streams rows into a COG at ``path`` on ``grid``.

    ``rows_grid`` is the 10 m grid rows are written on; when it differs from ``grid`` (another
    resolution, CRS or pixel phase), the result is warped at the end: onto a coarser grid by
    the average, onto one as fine (a shift of the pixel edges) by cubic convolution for
    reflectance and bilinear for σ; the mask by nearest neighbour; then values are kept
    exactly where the mask says valid, and flagged with ``keep_flagged``.
    """

    def __init__(self, path: str | os.PathLike[str], grid: GeoBox, rows_grid: GeoBox,
                 band_names: tuple[str, ...], with_std: bool, dtype: OutputDtype = "uint16",
                 tags: dict[str, str] | None = None, overwrite: bool = False,
                 keep_flagged: bool = False) -> None:
        if dtype not in ("uint16", "float32"):
            raise ValueError(f"dtype must be uint16 or float32, got {dtype!r}")
        self.path = check_output_path(path, overwrite)
        self.grid, self.rows_grid = grid, rows_grid
        self.band_names, self.with_std, self.dtype = band_names, with_std, dtype
        self.overwrite = overwrite
        self.descriptions = [*band_names, *(f"{name}_std" for name in band_names if with_std),
                             "mask"]
        folder = self.path.parent if str(self.path.parent) else Path(".")
        remove_stale_workdirs(folder, self.path.name)
        self._workdir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=folder))
        (self._workdir / OWNER_FILE).write_text(json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "output": self.path.name}))
        self._rows_path = self._workdir / "rows.tif"
        self.keep_flagged = keep_flagged  # flagged pixels keep their values (--keep-flagged)
        # Rows that will be warped stay float32 until then: encoding after the warp keeps
        # uint16 output within half a DN of float32 output.
        self._rows_dtype = self.dtype if grid == rows_grid else "float32"
        self._dataset = rasterio.open(self._rows_path, "w",
                                      **self._profile(rows_grid, self._rows_dtype))
        self._describe(self._dataset, tags or {})
        # Overview levels on the output grid, streamed with the rows (none when warping).
        self._overviews: list[tuple[object, np.ndarray, np.ndarray]] = []
        try:
            self._open_overviews()
        except BaseException:
            self.abort()
            raise

    def _open_overviews(self) -> None:
        """The chain of overview files (none when the rows are warped onto another grid)."""
        grid = self.grid
        if grid == self.rows_grid:
            rows_above, cols_above = np.arange(grid.height), np.arange(grid.width)
            path = str(self._rows_path)
            for height, width in overview_sizes(grid.height, grid.width):
                rows_above = rows_above[nearest_indices(len(rows_above), height)]
                cols_above = cols_above[nearest_indices(len(cols_above), width)]
                path += ".ovr"
                profile = self._profile(grid)
                a, b, c, d, e, f = tuple(grid.affine)[:6]
                x_ratio, y_ratio = grid.width / width, grid.height / height
                profile.update(width=width, height=height, transform=rasterio.Affine(
                    a * x_ratio, b * y_ratio, c, d * x_ratio, e * y_ratio, f))
                self._overviews.append((rasterio.open(path, "w", **profile), rows_above,
                                        cols_above))

    def _profile(self, grid: GeoBox, dtype: str | None = None) -> dict:
        dtype = dtype or self.dtype
        return {
            "driver": "GTiff", "width": grid.width, "height": grid.height,
            "count": len(self.descriptions), "dtype": dtype, "crs": grid.crs.to_wkt(),
            "transform": grid.affine, "nodata": 0 if dtype == "uint16" else np.nan,
            "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK, "BIGTIFF": "IF_SAFER",
            # Band by band: writing needs no interleaving (the COG interleaves pixels).
            "interleave": "band",
        }

    def _describe(self, dataset, tags: dict[str, str]) -> None:
        bands = len(self.band_names)
        for index, name in enumerate(self.descriptions, start=1):
            dataset.set_band_description(index, name)
        if self.dtype == "uint16":
            scales = [REFLECTANCE_SCALE] * bands + [STD_SCALE] * (bands if self.with_std else 0)
            offsets = [REFLECTANCE_OFFSET] * bands + [0.0] * (bands if self.with_std else 0)
            dataset.scales = (*scales, 1.0)
            dataset.offsets = (*offsets, 0.0)
        quantity = band_quantity(tags.get("S2L8H_LEVEL", ""))
        for index, name in enumerate(self.band_names, start=1):
            dataset.update_tags(index, BAND=name, QUANTITY=quantity)
            if self.with_std:
                dataset.update_tags(index + bands, BAND=name,
                                    QUANTITY=f"standard deviation of {quantity}")
        dataset.update_tags(len(self.descriptions),
                            QUANTITY="mask: 0 no data, 1 valid, 2 flagged by quality band")
        dataset.update_tags(**tags)

    def write_rows(self, row0: int, mean: np.ndarray, std: np.ndarray | None,
                   mask: np.ndarray, keep: np.ndarray | None = None, col0: int = 0) -> None:
        """Write the block at ``(row0, col0)``: ``mean``/``std`` (6, r, c) reflectance, ``mask``
        (r, c) uint8, ``keep`` (r, c) the pixels whose values are written (default: mask
        valid; the rest are nodata); values outside the writer's grid are cropped."""
        rows = min(mean.shape[1], self.rows_grid.height - row0)
        width = min(mean.shape[2], self.rows_grid.width - col0)
        if rows <= 0 or width <= 0:
            return
        mean, mask = mean[:, :rows, :width], mask[:rows, :width]
        keep = mask == MASK_VALID if keep is None else keep[:rows, :width]
        block = self._pack(mean, None if std is None else std[:, :rows, :width], mask, keep,
                           self._rows_dtype)
        self._dataset.write(block, window=rasterio.windows.Window(col0, row0, width, rows))
        for dataset, source_rows, source_cols in self._overviews:
            top, bottom = np.searchsorted(source_rows, (row0, row0 + rows))
            left, right = np.searchsorted(source_cols, (col0, col0 + width))
            if bottom > top and right > left:
                picked = block[:, source_rows[top:bottom] - row0][:, :, source_cols[left:right]
                                                                   - col0]
                dataset.write(picked, window=rasterio.windows.Window(left, top, right - left,
                                                                     bottom - top))

    def _pack(self, mean: np.ndarray, std: np.ndarray | None, mask: np.ndarray,
              keep: np.ndarray, dtype: str) -> np.ndarray:
        """One block of this writer's layout in ``dtype``: reflectance and σ where ``keep``
        (nodata elsewhere), then the mask."""
        bands = mean.shape[0]
        block = np.empty((len(self.descriptions), *mask.shape), dtype=dtype)
        if dtype == "uint16":
            encode_reflectance(mean, keep, out=block[:bands])
            if self.with_std:
                encode_std(std, keep, out=block[bands:2 * bands])
        else:
            block[:bands] = np.where(keep, mean, np.nan)
            if self.with_std:
                block[bands:2 * bands] = np.where(keep, std, np.nan)
        block[-1] = mask
        return block

    def _close(self) -> None:
        try:
            self._dataset.close()
        finally:
            for dataset, _, _ in self._overviews:
                dataset.close()

    def add_tags(self, tags: dict[str, str]) -> None:
        """Add dataset tags before :meth:`commit` (e.g. figures known only at the end)."""
        self._dataset.update_tags(**tags)

    def commit(self) -> Path:
        """Finish the COG and move it to its final name."""
        self._close()
        source = self._rows_path
        try:
            if self.grid != self.rows_grid:
                source = self._workdir / "warped.tif"
                if not self._warp(source):
                    # The rows held data (harmonize checks), but none fell on an output
                    # pixel: a grid that meets the scene's data only along its edge.
                    raise OutputError(f"{self.path}: not written: no pixel of the output "
                                      "grid has data (the grid meets the scene's data only "
                                      "at its edge)")
            partial = self._workdir / "final.tif"
            overviews = "FORCE_USE_EXISTING" if self._overviews else "AUTO"
            rasterio.shutil.copy(source, partial, driver="COG", **COMPRESSION,
                                 BLOCKSIZE=str(BLOCK), OVERVIEWS=overviews,
                                 OVERVIEW_RESAMPLING="NEAREST", BIGTIFF="IF_SAFER",
                                 NUM_THREADS="ALL_CPUS")
            if self.path.exists() and not self.overwrite:
                raise OutputError(f"{self.path}: appeared while running; not overwritten")
            os.replace(partial, self.path)
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)
        return self.path

    def _warp(self, destination: Path) -> bool:
        """Warp the float32 rows onto the output grid (GDAL's warper, all cores), then
        write them in the output's encoding, data and mask made to agree (:meth:`_encode`);
        return whether any output pixel has data. (A warped VRT read strip by strip would
        spare the float copy on disk but took 2.7 times as long.)"""
        floats = destination.with_name("warped-float.tif") if self.dtype == "uint16" \
            else destination
        bands = len(self.band_names)
        with rasterio.open(self._rows_path) as rows, \
                rasterio.open(floats, "w", **self._profile(self.grid, "float32")) as warped:
            self._describe(warped, dict(rows.tags()))
            # Pixel counts over about the same area: many rows pixels per output pixel is a
            # coarser output (average), about one is a shift (interpolate).
            coarser = rows.width * rows.height > 2 * self.grid.width * self.grid.height
            for indexes, resampling in ((list(range(1, bands + 1)), Resampling.cubic),
                                        (list(range(bands + 1, rows.count)),
                                         Resampling.bilinear),
                                        ([rows.count], Resampling.nearest)):
                if not indexes:
                    continue
                if coarser and resampling != Resampling.nearest:
                    resampling = Resampling.average
                reproject(rasterio.band(rows, indexes), rasterio.band(warped, indexes),
                          resampling=resampling, num_threads=WARP_THREADS,
                          warp_mem_limit=WARP_MEMORY_MB)
        self._rows_path.unlink()  # free its space before the next copy
        return self._encode(floats, destination) > 0

    def _encode(self, floats: Path, destination: Path) -> int:
        """Write a float32 file of this writer's layout (NaN: nodata, as write_rows keeps it)
        in the output's encoding into ``destination`` (float32: in place), strip by strip,
        with the data made to agree with the mask: values only where the mask says valid
        (and flagged, with ``keep_flagged``), and a valid pixel without values marked
        nodata. (An average onto a coarser grid gives an edge pixel a value from its one
        valid source pixel while the mask, by nearest neighbour, calls it nodata.) Returns
        the number of pixels with data."""
        bands = len(self.band_names)
        kept = 0
        in_place = floats == destination  # float32: rewritten where it is
        with rasterio.open(floats, "r+" if in_place else "r") as source, \
                (contextlib.nullcontext(source) if in_place else
                 rasterio.open(destination, "w", **self._profile(self.grid))) as encoded:
            if not in_place:
                self._describe(encoded, dict(source.tags()))
            for row0 in range(0, source.height, BLOCK):
                window = rasterio.windows.Window(0, row0, source.width,
                                                 min(BLOCK, source.height - row0))
                values = source.read(window=window)
                mask = np.nan_to_num(values[-1]).astype(np.uint16)
                finite = np.isfinite(values[:bands]).all(axis=0)
                if self.with_std:
                    finite &= np.isfinite(values[bands:2 * bands]).all(axis=0)
                mask[(mask == MASK_VALID) & ~finite] = MASK_NODATA
                keep = finite & ((mask == MASK_VALID) |
                                 ((mask == MASK_FLAGGED) & self.keep_flagged))
                kept += int(keep.sum())
                block = self._pack(values[:bands], values[bands:2 * bands], mask, keep,
                                   self.dtype)
                encoded.write(block, window=window)
        if not in_place:
            floats.unlink()
        return kept

    def abort(self) -> None:
        """Drop everything written so far; the output path is left untouched."""
        try:
            self._close()
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)
