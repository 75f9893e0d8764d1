"""Landsat-8/9 scenes as USGS ships them, recognized from their file names.

Supported: Collection-2 Level-2 (``*_SR_B2.TIF`` ... ``*_SR_B7.TIF``, ``*_QA_PIXEL.TIF``,
``*_QA_RADSAT.TIF``, ``*_MTL.json|txt``), a stacked GeoTIFF of the six SR bands, and Level-1
band files (``*_B2.TIF`` ... ``*_B8.TIF``, ``*_BQA.TIF`` or ``*_QA_PIXEL.TIF``, ``*_MTL``) of
Collection 2, Collection 1 and the pre-collection archive, of Landsat-8 and -9. The pan band
always comes from Level 1 (band 8 and its MTL). File names are recognized by one table of
patterns, :data:`FILE_PATTERNS` (:func:`classify_file`).

Radiometry (reflectance, unitless):

- Level-2 SR: ``DN × 0.0000275 − 0.2``; DN 0 is fill.
- Level-1 TOA (``toa=True`` mode for Level-1-only scenes): ``(M × DN + A) / sin(sun elevation)``.
- Pan: ``ρ' = M8 × DN + A8`` without sun-angle correction, or ``ρ' / sin(sun elevation)`` when
  the model's convention asks for it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.errors import RasterioIOError

from s2l8h.bands import SR_OFFSET, SR_SCALE
from s2l8h.errors import S2L8HWarning, warn
from s2l8h.io.errors import InputError
from s2l8h.io.grid import crs_name
from s2l8h.io.mtl import Geolocation, LandsatMetadata, find_value, read_metadata
from s2l8h.io.quality import QaLayout

MULTISPECTRAL_BAND_NUMBERS = (2, 3, 4, 5, 6, 7)  # blue green red nir08 swir16 swir22
PAN_BAND_NUMBER = 8

#: Tag every s2l8h output carries: such files are never read as scene inputs.
OUTPUT_TAG = "S2L8H_VERSION"
#: Pixel sizes (m) of Landsat-8/9 OLI products.
MULTISPECTRAL_PIXEL, PAN_PIXEL = 30.0, 15.0
#: Reflectance below which no Collection-2 SR median can fall (DN 7273 is reflectance 0).
_LOWEST_MEDIAN_DN = (-0.05 - SR_OFFSET) / SR_SCALE


# ------------------------------------------------------------------------ file names ----
#
# A USGS file name is a product (or scene) id, then a suffix naming what the file holds. The
# table below is the product of the id schemes and the file kinds: every name is tried against
# the patterns in order (kinds first, as listed; then schemes) and the first full match says
# what the file is. Named groups: ``sensor`` (LC, LO, LT, LE), ``satellite`` (8 or 9),
# ``level`` (L1TP, L2SP, ...), WRS-2 ``path`` and ``row``, acquisition ``date`` (YYYYMMDD, or
# ``year`` and ``doy`` before the collections), ``processed`` (date), ``collection`` (01, 02),
# ``tier`` (T1, T2, RT), ``station`` and ``version`` (pre-collection), ``band`` (number) and
# ``rest`` (anything between the id and the suffix, e.g. ``_SR`` of a stack).

#: Id schemes, tried in this order. ``collection``: Collection-1/2 product ids
#: (``LC08_L2SP_195025_20230707_20230717_02_T1``); a name that only starts like one
#: (``LC08_...``) is of this scheme too, without the acquisition groups. ``pre-collection``:
#: scene ids ``LC80200392015216LGN00`` (year, day of year, ground station, version).
#: ``unnamed``: any other name, recognized by its suffix alone.
_ID_SCHEMES: tuple[tuple[str, str], ...] = (
    ("collection", r"(?P<sensor>L[COTE])0(?P<satellite>[89])_(?:(?P<level>L\w{3})_"
                   r"(?P<path>\d{3})(?P<row>\d{3})_(?P<date>\d{8})_(?P<processed>\d{8})_"
                   r"(?P<collection>\d{2})_(?P<tier>\w{2}))?"),
    ("pre-collection", r"(?P<sensor>L[COTE])(?P<satellite>[89])(?P<path>\d{3})(?P<row>\d{3})"
                       r"(?P<year>\d{4})(?P<doy>\d{3})(?P<station>[A-Z]{3})(?P<version>\d{2})"),
    ("unnamed", ""),
)
#: File kinds by suffix, tried in this order (``_SR_B2`` before ``_B2``, named kinds before
#: ``raster``). ``band``: a Level-1 band file (``_B1`` ... ``_B11``); ``pan``: Level-1 band 8;
#: ``text``: a ``.txt``/``.json`` file, read as an MTL only when given explicitly;
#: ``raster``: any other GeoTIFF, a stack of the SR bands or a pan, told apart by band count.
FileKind = Literal["sr_band", "qa_pixel", "qa_radsat", "bqa", "pan", "band", "mtl", "text",
                   "raster"]
_KINDS: tuple[tuple[FileKind, str], ...] = (
    ("sr_band", r"_SR_B(?P<band>[2-7])\.tiff?"),
    ("qa_pixel", r"_QA_PIXEL\.tiff?"),
    ("qa_radsat", r"_QA_RADSAT\.tiff?"),
    ("bqa", r"_BQA\.tiff?"),
    ("pan", r"_B(?P<band>0?8)\.tiff?"),
    ("band", r"_B(?P<band>\d{1,2})\.tiff?"),
    ("mtl", r"_MTL\.(?:txt|json)"),
    ("text", r"\.(?:txt|json)"),
    ("raster", r"\.tiff?"),
)


@dataclass(frozen=True)
class FilePattern:
    """One row of :data:`FILE_PATTERNS`: a file kind under one id scheme."""

    kind: FileKind
    scheme: str
    regex: re.Pattern[str]


#: The one table of Landsat file-name patterns (case-insensitive, whole names).
FILE_PATTERNS: tuple[FilePattern, ...] = tuple(
    FilePattern(kind, scheme, re.compile(rf"^{ids}(?P<rest>.*?){suffix}$", re.IGNORECASE))
    for kind, suffix in _KINDS for scheme, ids in _ID_SCHEMES)


@dataclass(frozen=True)
class FileName:
    """What a file name says: its kind, its id scheme and the groups the pattern found
    (``None`` where the name does not tell). ``date`` is the acquisition date, YYYY-MM-DD;
    ``stem`` is the name without its kind suffix (the product id and anything after it)."""

    path: Path
    kind: FileKind
    scheme: str
    stem: str
    band: int | None = None
    sensor: str | None = None
    satellite: str | None = None
    level: str | None = None
    wrs_path: int | None = None
    wrs_row: int | None = None
    date: str | None = None
    collection: str | None = None
    tier: str | None = None


def _iso_date(groups: dict[str, str | None]) -> str | None:
    """YYYY-MM-DD from ``date`` (YYYYMMDD) or from ``year`` and ``doy`` (day of year)."""
    if groups.get("date"):
        date = groups["date"]
        return f"{date[:4]}-{date[4:6]}-{date[6:]}"
    if groups.get("year") and groups.get("doy"):
        day = dt.date(int(groups["year"]), 1, 1) + dt.timedelta(days=int(groups["doy"]) - 1)
        return day.isoformat()
    return None


def classify_file(path: str | os.PathLike[str]) -> FileName | None:
    """The first pattern of :data:`FILE_PATTERNS` that ``path``'s name matches, parsed;
    ``None`` for a name no Landsat kind recognizes (neither TIFF nor text)."""
    path = Path(path)
    for pattern in FILE_PATTERNS:
        if match := pattern.regex.match(path.name):
            groups = match.groupdict()
            return FileName(
                path=path, kind=pattern.kind, scheme=pattern.scheme,
                stem=path.name[:match.end("rest")],
                band=int(groups["band"]) if groups.get("band") else None,
                sensor=groups.get("sensor"), satellite=groups.get("satellite"),
                level=groups.get("level"),
                wrs_path=int(groups["path"]) if groups.get("path") else None,
                wrs_row=int(groups["row"]) if groups.get("row") else None,
                date=_iso_date(groups), collection=groups.get("collection"),
                tier=groups.get("tier"))
    return None


def _qa_layout_for(name: FileName) -> QaLayout:
    """QA_PIXEL bits, or BQA bits of Collection 1 or of the pre-collection archive."""
    if name.kind == "qa_pixel":
        return "qa_pixel"
    return "bqa_c1" if name.scheme == "collection" else "bqa_pre"


#: What :class:`ToaModeWarning` says.
TOA_MODE_MESSAGE = ("TOA mode: Level-1 top-of-atmosphere reflectance is fed to models that "
                    "expect surface reflectance; expect biased output")


class ToaModeWarning(S2L8HWarning):
    """A Level-1 scene is being run in TOA mode against models that expect surface reflectance."""


@dataclass(frozen=True)
class LandsatScene:
    """The files of one Landsat acquisition and how to read them.

    ``multispectral`` holds six single-band files in the order blue, green, red, nir08, swir16,
    swir22, or one stacked file whose first six bands are in that order. ``level`` is ``"L2"``
    (surface reflectance) or ``"L1"`` (digital numbers turned into TOA reflectance). ``qa_band``
    is the band of ``qa`` holding the quality flags (7 for a stack with QA_PIXEL as band 7).
    ``mtl_files`` are every MTL file read.
    """

    name: str
    level: Literal["L2", "L1"]
    multispectral: tuple[Path, ...]
    pan: Path | None
    qa: Path | None
    qa_layout: QaLayout | None
    radsat: Path | None
    metadata: LandsatMetadata | None
    pan_metadata: LandsatMetadata | None
    qa_band: int = 1
    mtl_files: tuple[Path, ...] = ()

    @property
    def stacked(self) -> bool:
        return len(self.multispectral) == 1

    def multispectral_sources(self) -> list[tuple[Path, int]]:
        """(file, band index) of the six bands, in model order."""
        if self.stacked:
            return [(self.multispectral[0], index) for index in range(1, 7)]
        return [(path, 1) for path in self.multispectral]

    def files(self) -> list[Path]:
        """Every file the scene is read from (bands, pan, quality bands, MTLs)."""
        paths = [*self.multispectral, self.pan, self.qa, self.radsat, *self.mtl_files]
        return list(dict.fromkeys(path for path in paths if path is not None))

    def geolocation(self) -> Geolocation | None:
        """What the scene's MTLs say of its geolocation (:meth:`LandsatMetadata.geolocation`,
        the bands' MTL first, then the pan's, field by field); ``None`` without an MTL."""
        found = [m.geolocation() for m in (self.metadata, self.pan_metadata) if m is not None]
        if not found:
            return None
        return Geolocation(*(next((value for value in values if value is not None), None)
                             for values in zip(*(astuple(g) for g in found), strict=True)))

    def crs(self) -> rasterio.crs.CRS:
        """The CRS of the multispectral bands."""
        with rasterio.open(self.multispectral[0]) as dataset:
            return dataset.crs

    def bands_grid(self) -> GeoBox:
        """The multispectral bands' own grid (30 m, their CRS and pixel edges)."""
        with rasterio.open(self.multispectral[0]) as dataset:
            if dataset.crs is None:
                raise InputError(self.multispectral[0], "raster has no CRS")
            return GeoBox.from_rio(dataset)

    def multispectral_rescaling(self) -> list[tuple[float, float]]:
        """(scale, offset) turning each band's DN into reflectance."""
        if self.level == "L2":
            return [(SR_SCALE, SR_OFFSET)] * 6
        assert self.metadata is not None
        sine = self.metadata.sun_elevation_sine
        return [
            (mult / sine, add / sine)
            for mult, add in (self.metadata.reflectance_rescaling(band)
                              for band in MULTISPECTRAL_BAND_NUMBERS)
        ]

    def pan_rescaling(self, sun_corrected: bool = False) -> tuple[float, float]:
        """(scale, offset) turning pan DN into TOA reflectance ρ' (or ρ if ``sun_corrected``)."""
        if self.pan_metadata is None:
            raise InputError(self.pan, "no MTL with REFLECTANCE_MULT_BAND_8 for the pan band")
        mult, add = self.pan_metadata.reflectance_rescaling(PAN_BAND_NUMBER)
        if sun_corrected:
            sine = self.pan_metadata.sun_elevation_sine
            return mult / sine, add / sine
        return mult, add


@dataclass(frozen=True)
class RasterInfo:
    """What :func:`raster_info` read of a raster's header (pixel sizes in CRS units)."""

    path: Path
    count: int
    dtype: str
    crs: rasterio.crs.CRS
    transform: rasterio.Affine
    width: int
    height: int
    tags: dict[str, str]
    descriptions: tuple[str | None, ...]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return _bounds(self.transform, self.width, self.height)

    @property
    def pixel_size(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def is_s2l8h_output(self) -> bool:
        return OUTPUT_TAG in self.tags


def _bounds(transform: rasterio.Affine, width: int, height: int
            ) -> tuple[float, float, float, float]:
    left, top = transform.c, transform.f
    right, bottom = left + transform.a * width, top + transform.e * height
    return min(left, right), min(top, bottom), max(left, right), max(top, bottom)


def raster_info(path: Path) -> RasterInfo:
    """Open ``path``, read its last row (a truncated file fails there) and check it is
    georeferenced; return its header."""
    try:
        with rasterio.open(path) as dataset:
            dataset.read(1, window=rasterio.windows.Window(0, dataset.height - 1,
                                                           dataset.width, 1))
            if dataset.crs is None:
                raise InputError(path, "raster has no CRS (not georeferenced)")
            return RasterInfo(Path(path), dataset.count, dataset.dtypes[0], dataset.crs,
                              dataset.transform, dataset.width, dataset.height,
                              dict(dataset.tags()), tuple(dataset.descriptions))
    except RasterioIOError as error:
        raise InputError(path, f"not a readable raster, corrupt or truncated ({error})") \
            from None


def check_raster(path: Path) -> int:
    """Open ``path``, read its last row and check it is georeferenced; return its band
    count."""
    return raster_info(path).count


@dataclass(frozen=True)
class Acquisition:
    """Satellite (8 or 9), WRS-2 path and row, and acquisition date of a file, and where
    they were read (a file name or an MTL)."""

    satellite: str | None
    path: int | None
    row: int | None
    date: str | None  # YYYY-MM-DD
    source: Path

    def describe(self) -> str:
        parts = []
        if self.satellite:
            parts.append(f"Landsat-{self.satellite}")
        if self.path is not None and self.row is not None:
            parts.append(f"path/row {self.path:03d}/{self.row:03d}")
        if self.date:
            parts.append(f"acquired {self.date}")
        return ", ".join(parts)


def acquisition_from_name(path: Path) -> Acquisition | None:
    """The acquisition a USGS file name encodes (Collection 1/2 or pre-collection), if any:
    only a whole product or scene id tells one."""
    name = classify_file(path)
    if name is None or name.date is None:
        return None
    return Acquisition(name.satellite, name.wrs_path, name.wrs_row, name.date, path)


def acquisition_from_metadata(metadata: LandsatMetadata) -> Acquisition:
    def number(key: str) -> int | None:
        value = find_value(metadata.document, key)
        try:
            return int(float(value)) if value is not None else None
        except ValueError:
            raise InputError(metadata.path, f"{key} is not a number: {value!r}") from None

    satellite = metadata.spacecraft[-1] if metadata.spacecraft else None
    return Acquisition(satellite, number("WRS_PATH"), number("WRS_ROW"),
                       metadata.date_acquired or None, metadata.path)


def check_same_acquisition(acquisitions: Sequence[Acquisition]) -> None:
    """All files must come from one acquisition: same satellite, path/row and date wherever
    a file name or MTL tells them."""
    for field_name, label in (("satellite", "satellite"), ("date", "acquisition date"),
                              ("path", "WRS path"), ("row", "WRS row")):
        known = [a for a in acquisitions if getattr(a, field_name) is not None]
        if not known:
            continue
        first = known[0]
        for other in known[1:]:
            if getattr(other, field_name) != getattr(first, field_name):
                raise InputError(
                    other.source, f"{label} differs from the rest of the scene: this file is "
                    f"{other.describe()}, but {first.source.name} is {first.describe()} "
                    "(files of different acquisitions cannot be combined)")


def _sample(path: Path, band: int = 1, size: int = 256) -> tuple[np.ndarray, float | None]:
    """A decimated sample (at most ``size`` x ``size``) of the central 1024 x 1024 px of
    ``band``, and the file's nodata value."""
    with rasterio.open(path) as dataset:
        rows, cols = min(1024, dataset.height), min(1024, dataset.width)
        window = rasterio.windows.Window((dataset.width - cols) // 2,
                                         (dataset.height - rows) // 2, cols, rows)
        shape = (min(size, rows), min(size, cols))
        values = dataset.read(band, window=window, out_shape=shape,
                              resampling=rasterio.enums.Resampling.nearest)
        return values, dataset.nodata


def check_digital_numbers(info: RasterInfo, band: int, product: str,
                          nodata: float | None = 0) -> None:
    """Reject a band whose values are not Landsat digital numbers: floating-point
    reflectance (0..1) where DNs are expected, or (Level-2) integers far below any surface
    reflectance (e.g. reflectance x 10000)."""
    values, fill = _sample(info.path, band)
    fill = fill if fill is not None else nodata
    valid = np.isfinite(values) if np.issubdtype(values.dtype, np.floating) else \
        np.ones(values.shape, dtype=bool)
    if fill is not None:
        valid &= values != fill
    if not valid.any():
        return
    where = f"band {band}" if info.count > 1 else "values"
    upper = float(np.percentile(values[valid], 99))
    if np.issubdtype(values.dtype, np.floating) and upper <= 2.0:
        raise InputError(info.path, f"{where} look like reflectance (99th percentile "
                         f"{upper:.3g}, {info.dtype}): expected {product} digital numbers "
                         "(uint16), e.g. Level-2 DN = (reflectance + 0.2) / 0.0000275")
    median = float(np.median(values[valid]))
    if product.startswith("Collection-2 Level-2") and median < _LOWEST_MEDIAN_DN:
        raise InputError(info.path, f"{where} have median {median:.0f}, which is surface "
                         f"reflectance {median * SR_SCALE + SR_OFFSET:.3f} in Collection-2 "
                         "Level-2 DN (DN x 0.0000275 - 0.2): not Collection-2 SR digital "
                         "numbers (reflectance x 10000?)")


def _looks_like_qa_pixel(info: RasterInfo, band: int) -> bool:
    """QA_PIXEL: named so, or integers with few distinct values that all set one of bits
    0-7 (fill, cloud, shadow, clear, water ... flags)."""
    name = (info.descriptions[band - 1] or "") + info.tags.get(f"BAND_{band}", "")
    if "QA" in name.upper():
        return True
    if not np.issubdtype(np.dtype(info.dtype), np.integer):
        return False
    values, _ = _sample(info.path, band)
    distinct = np.unique(values)
    return len(distinct) <= 512 and bool(((distinct.astype(np.int64) & 0xFF) != 0).all())


def _check_same_grid(info: RasterInfo, reference: RasterInfo) -> None:
    if info.crs != reference.crs:
        raise InputError(info.path, f"in {crs_name(info.crs)}, but {reference.path.name} is "
                         f"in {crs_name(reference.crs)}: bands of one scene share one grid")
    if info.transform != reference.transform or (info.width, info.height) != \
            (reference.width, reference.height):
        dx = info.transform.c - reference.transform.c
        dy = info.transform.f - reference.transform.f
        raise InputError(info.path, f"grid differs from {reference.path.name}'s (origin "
                         f"shifted by {dx:+g}, {dy:+g} m; {info.width} x {info.height} vs "
                         f"{reference.width} x {reference.height} px, pixel "
                         f"{info.pixel_size[0]:g} vs {reference.pixel_size[0]:g} m): bands of "
                         "one scene share one grid")


def _overlap_fraction(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Area of ``a`` ∩ ``b`` over the area of ``b``."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    area = (b[2] - b[0]) * (b[3] - b[1])
    return max(0.0, width) * max(0.0, height) / area if area > 0 else 0.0


def _check_belongs(info: RasterInfo, reference: RasterInfo, what: str,
                   pixel: float) -> None:
    """``info`` (pan or quality band) is in the scene's CRS, has ``pixel`` m pixels and
    covers at least half of the scene's footprint."""
    if info.crs != reference.crs:
        raise InputError(info.path, f"{what} in {crs_name(info.crs)}, but the bands "
                         f"({reference.path.name}) are in {crs_name(reference.crs)}: not "
                         "the same scene")
    size = info.pixel_size
    if not (math.isclose(size[0], pixel, rel_tol=1e-3) and
            math.isclose(size[1], pixel, rel_tol=1e-3)):
        raise InputError(info.path, f"{what} has {size[0]:g} x {size[1]:g} m pixels; a "
                         f"Landsat-8/9 {what} has {pixel:g} m pixels")
    covered = _overlap_fraction(info.bounds, reference.bounds)
    if 0 < covered < 0.5:  # no overlap at all: the reader says it does not meet the grid
        raise InputError(info.path, f"{what} covers {covered:.0%} of the bands' footprint "
                         f"({reference.path.name}): not the same scene or crop")


def _gather(items: Sequence[Path]) -> tuple[list[Path], set[Path]]:
    """Files to look at: the contents of folders (hidden files skipped) and the files given
    (returned as the second set: given explicitly)."""
    files: list[Path] = []
    explicit: set[Path] = set()
    for item in items:
        if item.is_dir():
            files.extend(sorted(path for path in item.iterdir()
                                if path.is_file() and not path.name.startswith(".")))
        elif item.is_file():
            files.append(item)
            explicit.add(item)
        else:
            raise InputError(item, "no such file or folder")
    return files, explicit


@dataclass
class _SceneFiles:
    """The files of a scene, grouped by the kind their names say (:func:`classify_file`).

    ``l1_bands`` maps Level-1 band numbers to files (8 is the pan); ``rasters`` are GeoTIFFs
    no name pattern tells (a stack or a pan, by band count); ``explicit``: files given by name
    rather than found in a folder.
    """

    explicit: set[Path]
    sr_bands: dict[int, Path] = field(default_factory=dict)
    l1_bands: dict[int, Path] = field(default_factory=dict)
    qa_pixel: Path | None = None
    bqa: Path | None = None
    radsat: Path | None = None
    mtls: list[Path] = field(default_factory=list)
    rasters: list[Path] = field(default_factory=list)
    names: dict[Path, FileName] = field(default_factory=dict)


def _group_by_kind(files: Sequence[Path], explicit: set[Path]) -> _SceneFiles:
    """Classify each file by name and group the scene's files by kind (a later file of a
    kind replaces an earlier one; names of no kind, and text files found in a folder that are
    not ``*_MTL``, are left out)."""
    grouped = _SceneFiles(explicit)
    for path in files:
        name = classify_file(path)
        if name is None:
            continue
        grouped.names[path] = name
        if name.kind == "sr_band":
            grouped.sr_bands[name.band] = path  # type: ignore[index]
        elif name.kind in ("band", "pan"):
            grouped.l1_bands[name.band] = path  # type: ignore[index]
        elif name.kind == "qa_pixel":
            grouped.qa_pixel = path
        elif name.kind == "qa_radsat":
            grouped.radsat = path
        elif name.kind == "bqa":
            grouped.bqa = path
        elif name.kind == "mtl" or (name.kind == "text" and path in explicit):
            grouped.mtls.append(path)
        elif name.kind == "raster":
            grouped.rasters.append(path)
    return grouped


class _Headers:
    """Raster headers (:func:`raster_info`), each file read once; :meth:`__call__` refuses
    s2l8h outputs as scene inputs, :meth:`peek` returns any header."""

    def __init__(self) -> None:
        self.infos: dict[Path, RasterInfo] = {}

    def peek(self, path: Path) -> RasterInfo:
        """The header of ``path``, whatever wrote it."""
        if path not in self.infos:
            self.infos[path] = raster_info(path)
        return self.infos[path]

    def __call__(self, path: Path) -> RasterInfo:
        """The header of ``path``, an input (not an s2l8h output)."""
        info = self.peek(path)
        if info.is_s2l8h_output:
            raise InputError(path, f"is an s2l8h output (tag {OUTPUT_TAG}), not a Landsat "
                             "input; give the scene's own files or its folder")
        return info


def _sort_rasters(files: _SceneFiles, headers: _Headers) -> tuple[Path | None, Path | None]:
    """(pan, stack) among the rasters no name tells: the first single-band one is the pan
    (unless a ``*_B8`` file is), the first with 6 or 7 bands the SR stack. s2l8h outputs found
    in a folder are skipped; given explicitly, they are refused."""
    pan, stacked = files.l1_bands.get(PAN_BAND_NUMBER), None
    for path in files.rasters:
        info = headers.peek(path)
        if info.is_s2l8h_output:
            if path in files.explicit:
                headers(path)  # raises: an output given as an input
            continue  # an earlier run's output in the scene folder: not an input
        if info.count == 1 and pan is None:
            pan = path
        elif info.count in (6, 7) and stacked is None:
            stacked = path
        else:
            raise InputError(path, f"unrecognized raster with {info.count} band(s): expected "
                             "a single-band pan file or a stack of the six SR bands (blue, "
                             "green, red, nir08, swir16, swir22), optionally with QA_PIXEL "
                             "as band 7")
    return pan, stacked


@dataclass(frozen=True)
class _Bands:
    """The multispectral bands chosen for a scene, their product and quality band."""

    level: Literal["L2", "L1"]
    multispectral: tuple[Path, ...]
    metadata: LandsatMetadata | None
    product: str  # what check_digital_numbers calls the expected digital numbers
    qa: Path | None
    qa_layout: QaLayout | None
    qa_band: int = 1


def _level2_bands(files: _SceneFiles, stacked: Path | None, metadata: LandsatMetadata | None,
                  headers: _Headers, where: Path) -> _Bands:
    """Six SR band files, or a stack of six (plus QA_PIXEL as band 7, which is the quality
    band unless a QA file is given)."""
    qa = files.qa_pixel or files.bqa
    qa_layout = _qa_layout_for(files.names[qa]) if qa is not None else None
    qa_band = 1
    if stacked is not None:
        multispectral: tuple[Path, ...] = (stacked,)
        stack = headers(stacked)
        if stack.count == 7:
            if not _looks_like_qa_pixel(stack, 7):
                raise InputError(stacked, "stack has 7 bands and band 7 is not a QA_PIXEL "
                                 "band: expected the six SR bands (blue, green, red, nir08, "
                                 "swir16, swir22), optionally followed by QA_PIXEL as band 7")
            if qa is None:
                qa, qa_layout, qa_band = stacked, "qa_pixel", 7
    else:
        missing = [f"SR_B{n}" for n in MULTISPECTRAL_BAND_NUMBERS if n not in files.sr_bands]
        if missing:
            raise InputError(where, f"surface-reflectance bands missing: {missing}")
        multispectral = tuple(files.sr_bands[n] for n in MULTISPECTRAL_BAND_NUMBERS)
    return _Bands("L2", multispectral, metadata, "Collection-2 Level-2 surface-reflectance",
                  qa, qa_layout, qa_band)


def _level1_bands(files: _SceneFiles, metadata: LandsatMetadata | None, toa: bool,
                  where: Path) -> _Bands:
    """Level-1 bands B2..B7 read as TOA reflectance: only with ``toa`` and an MTL; warns."""
    missing = [f"B{n}" for n in MULTISPECTRAL_BAND_NUMBERS if n not in files.l1_bands]
    if missing:
        raise InputError(where, f"Level-1 bands missing: {missing}")
    if not toa:
        raise InputError(where, "only Level-1 digital numbers, no surface reflectance "
                         "(SR_B2..SR_B7); run in TOA mode (--toa) to use TOA reflectance")
    if metadata is None:
        raise InputError(where, "Level-1 bands need their MTL file (*_MTL.txt/json)")
    warn(TOA_MODE_MESSAGE, ToaModeWarning, stacklevel=4)
    qa = files.qa_pixel or files.bqa
    return _Bands("L1", tuple(files.l1_bands[n] for n in MULTISPECTRAL_BAND_NUMBERS),
                  metadata, "Level-1", qa,
                  _qa_layout_for(files.names[qa]) if qa is not None else None)


def _choose_bands(files: _SceneFiles, stacked: Path | None,
                  metadata: Sequence[LandsatMetadata], headers: _Headers, toa: bool,
                  where: Path) -> _Bands:
    """Level-2 SR bands where there are any, else Level-1 bands (TOA mode)."""
    level2 = next((m for m in metadata if m.processing_level.startswith("L2")), None)
    level1 = next((m for m in metadata if not m.processing_level.startswith("L2")), None)
    if files.sr_bands or stacked is not None:
        return _level2_bands(files, stacked, level2 or level1, headers, where)
    if files.l1_bands:
        return _level1_bands(files, level1, toa, where)
    raise InputError(where, "no Landsat multispectral bands found (expected *_SR_B2.TIF.."
                     "*_SR_B7.TIF, a stacked SR GeoTIFF, or Level-1 *_B2.TIF..*_B7.TIF)")


def _check_pan(pan: Path | None, pan_metadata: LandsatMetadata | None,
               metadata: Sequence[LandsatMetadata], where: Path) -> None:
    """A pan band is there, with an MTL giving its reflectance rescaling."""
    if pan is None:
        raise InputError(where, "the panchromatic band is missing (Level-1 *_B8.TIF)")
    if pan_metadata is None:
        given = ", ".join(str(m.path) for m in metadata) or "no MTL file given"
        raise InputError(pan, "no MTL with REFLECTANCE_MULT_BAND_8 / REFLECTANCE_ADD_BAND_8 "
                         f"for the pan band ({given})")


def _check_scene(scene: LandsatScene, product: str, headers: _Headers,
                 metadata: Sequence[LandsatMetadata]) -> None:
    """Every file belongs to the scene: band counts, digital numbers, grids, pan and quality
    bands in its CRS with Landsat pixel sizes (15 m pan, 30 m quality) over its footprint,
    one acquisition in every file name and MTL."""
    reference = headers(scene.multispectral[0])
    for path in scene.multispectral:
        info = headers(path)
        if not scene.stacked:
            if info.count != 1:
                raise InputError(path, f"has {info.count} bands; a Landsat band file has one")
            _check_same_grid(info, reference)
    for path, band in scene.multispectral_sources():
        check_digital_numbers(headers(path), band, product)
    stack = scene.multispectral[0] if scene.stacked else None
    for path, what, pixel in ((scene.pan, "pan band", PAN_PIXEL),
                              (scene.qa, "quality band", MULTISPECTRAL_PIXEL),
                              (scene.radsat, "QA_RADSAT band", MULTISPECTRAL_PIXEL)):
        if path is None or path == stack:
            continue
        info = headers(path)
        if info.count != 1:
            raise InputError(path, f"has {info.count} bands; a Landsat {what} file has one")
        _check_belongs(info, reference, what, pixel)
    if scene.pan is not None:
        check_digital_numbers(headers(scene.pan), 1, "Level-1 panchromatic")
    used = [*scene.multispectral, scene.pan, scene.qa, scene.radsat]
    acquisitions = [found for found in (acquisition_from_name(path) for path in used
                                        if path is not None) if found is not None]
    acquisitions += [acquisition_from_metadata(m) for m in metadata]
    check_same_acquisition(acquisitions)


def _scene_name(bands: _Bands, files: _SceneFiles) -> str:
    """The MTL's product/scene id, else the first band file's name without its suffix."""
    if bands.metadata is not None and bands.metadata.scene_id:
        return bands.metadata.scene_id
    first = files.names.get(bands.multispectral[0])
    return first.stem if first is not None else bands.multispectral[0].stem


def open_scene(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    toa: bool = False,
    need_pan: bool = True,
) -> LandsatScene:
    """Recognize a scene from a folder or a list of files, and check that its files belong
    together.

    Each file is classified by its name (:data:`FILE_PATTERNS`), the files are grouped by
    kind, the bands chosen (Level-2 SR where there are any), and every file checked: band
    counts, data types and value ranges (digital numbers, not reflectance), every band on the
    scene's grid, pan and quality bands in its CRS with Landsat pixel sizes over its
    footprint, one acquisition (satellite, WRS path/row, date) in every file name and MTL, MTL
    numbers. s2l8h's own outputs (tag ``S2L8H_VERSION``) in a folder are skipped. A stack of
    seven bands is read as six SR bands + QA_PIXEL. Any ``.json``/``.txt`` file given
    explicitly is read as an MTL. ``toa=True`` allows a Level-1-only scene (no SR bands); it
    warns that the published models expect surface reflectance. ``need_pan=False``: the pan
    band is neither required nor used.
    """
    items = [Path(inputs)] if isinstance(inputs, str | os.PathLike) else [Path(p) for p in inputs]
    if not items:
        raise InputError(None, "no input files given")
    files = _group_by_kind(*_gather(items))
    metadata = [read_metadata(path) for path in files.mtls]
    headers = _Headers()
    pan, stacked = _sort_rasters(files, headers)
    bands = _choose_bands(files, stacked, metadata, headers, toa, items[0])
    pan = pan if need_pan else None
    pan_metadata = _pan_metadata(metadata, pan)
    if need_pan:
        _check_pan(pan, pan_metadata, metadata, items[0])
    scene = LandsatScene(name=_scene_name(bands, files), level=bands.level,
                         multispectral=bands.multispectral, pan=pan, qa=bands.qa,
                         qa_layout=bands.qa_layout, radsat=files.radsat,
                         metadata=bands.metadata, pan_metadata=pan_metadata,
                         qa_band=bands.qa_band, mtl_files=tuple(m.path for m in metadata))
    _check_scene(scene, bands.product, headers, metadata)
    return scene

def _pan_metadata(metadata: Sequence[LandsatMetadata], pan: Path | None
                  ) -> LandsatMetadata | None:
    """The MTL of the pan band: the one whose product id starts the pan's file name, else
    the first Level-1 MTL with band-8 rescaling, else any with it."""
    usable = [m for m in metadata if _has_band8_rescaling(m)]
    if pan is not None:
        for candidate in usable:
            if candidate.scene_id and pan.name.upper().startswith(candidate.scene_id.upper()):
                return candidate
    level1 = [m for m in usable if not m.processing_level.startswith("L2")]
    return (level1 or usable or [None])[0]


def describe_file(path: str | os.PathLike[str]) -> str:
    """``"<file name> sha256:<hex>"``: a file without its local folder names."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"{Path(path).name} sha256:{digest.hexdigest()}"


def describe_inputs(scene: LandsatScene) -> list[str]:
    """:func:`describe_file` of every input file, sorted: what the output was made from,
    without the local folder names."""
    return sorted(describe_file(path) for path in scene.files())


def _has_band8_rescaling(metadata: LandsatMetadata) -> bool:
    try:
        metadata.reflectance_rescaling(PAN_BAND_NUMBER)
    except InputError:
        return False
    return True


def read_reflectance(path: Path, band: int, scale: float, offset: float,
                     nodata: float | None = 0) -> np.ndarray:
    """Read one band as float32 reflectance with NaN where the DN equals ``nodata``."""
    with rasterio.open(path) as dataset:
        digital_numbers = dataset.read(band)
        fill = dataset.nodata if dataset.nodata is not None else nodata
    reflectance = digital_numbers.astype(np.float32) * np.float32(scale) + np.float32(offset)
    if fill is not None:
        reflectance[digital_numbers == fill] = np.nan
    return reflectance
