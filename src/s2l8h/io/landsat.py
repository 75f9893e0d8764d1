"""Landsat-8/9 scenes as USGS ships them, recognized from their file names.

Supported: Collection-2 Level-2 (``*_SR_B2.TIF`` ... ``*_SR_B7.TIF``, ``*_QA_PIXEL.TIF``,
``*_QA_RADSAT.TIF``, ``*_MTL.json|txt``), a stacked GeoTIFF of the six SR bands, and Level-1
band files (``*_B2.TIF`` ... ``*_B8.TIF``, ``*_BQA.TIF`` or ``*_QA_PIXEL.TIF``, ``*_MTL``) of
Collection 2, Collection 1 and the pre-collection archive. The pan band always comes from
Level 1 (band 8 and its MTL).

Radiometry (reflectance, unitless):

- Level-2 SR: ``DN × 0.0000275 − 0.2``; DN 0 is fill.
- Level-1 TOA (``toa=True`` mode for Level-1-only scenes): ``(M × DN + A) / sin(sun elevation)``.
- Pan: ``ρ' = M8 × DN + A8`` without sun-angle correction, or ``ρ' / sin(sun elevation)`` when
  the model's convention asks for it.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from s2l8h.io.errors import InputError
from s2l8h.io.mtl import LandsatMetadata, read_metadata
from s2l8h.io.quality import QaLayout

SR_SCALE = 0.0000275
SR_OFFSET = -0.2
MULTISPECTRAL_BAND_NUMBERS = (2, 3, 4, 5, 6, 7)  # blue green red nir08 swir16 swir22
PAN_BAND_NUMBER = 8

_SR_BAND = re.compile(r"_SR_B([2-7])\.tiff?$", re.IGNORECASE)
_L1_BAND = re.compile(r"_B(\d{1,2})\.tiff?$", re.IGNORECASE)
_QA_PIXEL = re.compile(r"_QA_PIXEL\.tiff?$", re.IGNORECASE)
_QA_RADSAT = re.compile(r"_QA_RADSAT\.tiff?$", re.IGNORECASE)
_BQA = re.compile(r"_BQA\.tiff?$", re.IGNORECASE)
_MTL = re.compile(r"_MTL\.(txt|json)$", re.IGNORECASE)
_TIFF = re.compile(r"\.tiff?$", re.IGNORECASE)
_COLLECTION_NAME = re.compile(r"^L[COTE]0[89]_", re.IGNORECASE)


class ToaModeWarning(UserWarning):
    """A Level-1 scene is being run in TOA mode against models that expect surface reflectance."""


@dataclass(frozen=True)
class LandsatScene:
    """The files of one Landsat acquisition and how to read them.

    ``multispectral`` holds six single-band files in the order blue, green, red, nir08, swir16,
    swir22, or one stacked file whose first six bands are in that order. ``level`` is ``"L2"``
    (surface reflectance) or ``"L1"`` (digital numbers turned into TOA reflectance).
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

    @property
    def stacked(self) -> bool:
        return len(self.multispectral) == 1

    def multispectral_sources(self) -> list[tuple[Path, int]]:
        """(file, band index) of the six bands, in model order."""
        if self.stacked:
            return [(self.multispectral[0], index) for index in range(1, 7)]
        return [(path, 1) for path in self.multispectral]

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


def _qa_layout_for(path: Path) -> QaLayout:
    if _QA_PIXEL.search(path.name):
        return "qa_pixel"
    return "bqa_c1" if _COLLECTION_NAME.match(path.name) else "bqa_pre"


def check_raster(path: Path) -> int:
    """Open ``path``, read its last row (a truncated file fails there) and check it is
    georeferenced; return its band count."""
    try:
        with rasterio.open(path) as dataset:
            dataset.read(1, window=rasterio.windows.Window(0, dataset.height - 1,
                                                           dataset.width, 1))
            if dataset.crs is None:
                raise InputError(path, "raster has no CRS (not georeferenced)")
            return dataset.count
    except RasterioIOError as error:
        raise InputError(path, f"not a readable raster, corrupt or truncated ({error})") \
            from None


def _scene_name(paths: Sequence[Path]) -> str:
    """The USGS scene/product id in front of the band suffix of the first file."""
    return re.sub(r"_(SR_)?B\d+$", "", paths[0].stem) if paths else "scene"


def open_scene(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    toa: bool = False,
    need_pan: bool = True,
) -> LandsatScene:
    """Recognize a scene from a folder or a list of files.

    ``toa=True`` allows a Level-1-only scene (no SR bands); it warns that the published
    models expect surface reflectance.
    """
    items = [Path(inputs)] if isinstance(inputs, str | os.PathLike) else [Path(p) for p in inputs]
    if not items:
        raise InputError(None, "no input files given")
    files: list[Path] = []
    for item in items:
        if item.is_dir():
            files.extend(sorted(path for path in item.iterdir() if path.is_file()))
        elif item.is_file():
            files.append(item)
        else:
            raise InputError(item, "no such file or folder")
    sr_bands: dict[int, Path] = {}
    l1_bands: dict[int, Path] = {}
    qa_pixel = bqa = radsat = None
    mtls: list[Path] = []
    other_tiffs: list[Path] = []
    for path in files:
        if match := _SR_BAND.search(path.name):
            sr_bands[int(match.group(1))] = path
        elif _QA_PIXEL.search(path.name):
            qa_pixel = path
        elif _QA_RADSAT.search(path.name):
            radsat = path
        elif _BQA.search(path.name):
            bqa = path
        elif match := _L1_BAND.search(path.name):
            l1_bands[int(match.group(1))] = path
        elif _MTL.search(path.name):
            mtls.append(path)
        elif _TIFF.search(path.name) and not path.name.startswith("."):
            other_tiffs.append(path)
    metadata = [read_metadata(path) for path in mtls]
    l2_metadata = next((m for m in metadata if m.processing_level.startswith("L2")), None)
    l1_metadata = next((m for m in metadata if not m.processing_level.startswith("L2")), None)
    pan_metadata = next((m for m in metadata if _has_band8_rescaling(m)), None)

    pan = l1_bands.get(PAN_BAND_NUMBER)
    stacked: Path | None = None
    for path in other_tiffs:
        count = check_raster(path)
        if count == 1 and pan is None:
            pan = path
        elif count >= 6 and stacked is None:
            stacked = path
        else:
            raise InputError(path, f"unrecognized raster with {count} band(s): expected a "
                             "single-band pan file or a stack of the six SR bands")
    qa = qa_pixel or bqa
    qa_layout = _qa_layout_for(qa) if qa is not None else None

    if sr_bands or stacked is not None:
        level: Literal["L2", "L1"] = "L2"
        if stacked is not None:
            multispectral: tuple[Path, ...] = (stacked,)
        else:
            missing = [f"SR_B{n}" for n in MULTISPECTRAL_BAND_NUMBERS if n not in sr_bands]
            if missing:
                raise InputError(items[0], f"surface-reflectance bands missing: {missing}")
            multispectral = tuple(sr_bands[n] for n in MULTISPECTRAL_BAND_NUMBERS)
        scene_metadata = l2_metadata or l1_metadata
    elif l1_bands:
        missing = [f"B{n}" for n in MULTISPECTRAL_BAND_NUMBERS if n not in l1_bands]
        if missing:
            raise InputError(items[0], f"Level-1 bands missing: {missing}")
        if not toa:
            raise InputError(items[0], "only Level-1 digital numbers, no surface reflectance "
                             "(SR_B2..SR_B7); run in TOA mode (--toa) to use TOA reflectance")
        if l1_metadata is None:
            raise InputError(items[0], "Level-1 bands need their MTL file (*_MTL.txt/json)")
        warnings.warn(
            "TOA mode: Level-1 top-of-atmosphere reflectance is fed to models that expect "
            "surface reflectance; expect biased output", ToaModeWarning, stacklevel=2)
        level = "L1"
        multispectral = tuple(l1_bands[n] for n in MULTISPECTRAL_BAND_NUMBERS)
        scene_metadata = l1_metadata
    else:
        raise InputError(items[0], "no Landsat multispectral bands found (expected *_SR_B2.TIF.."
                         "*_SR_B7.TIF, a stacked SR GeoTIFF, or Level-1 *_B2.TIF..*_B7.TIF)")
    for path in (*multispectral, pan, qa):
        if path is not None and path != stacked:
            check_raster(path)
    if need_pan:
        if pan is None:
            raise InputError(items[0], "the panchromatic band is missing (Level-1 *_B8.TIF)")
        if pan_metadata is None:
            where = ", ".join(str(m.path) for m in metadata) or "no MTL file given"
            raise InputError(pan, "no MTL with REFLECTANCE_MULT_BAND_8 / REFLECTANCE_ADD_BAND_8 "
                             f"for the pan band ({where})")
    name = scene_metadata.scene_id if scene_metadata and scene_metadata.scene_id else \
        _scene_name(multispectral)
    return LandsatScene(name=name, level=level, multispectral=multispectral,
                        pan=pan if need_pan else None, qa=qa, qa_layout=qa_layout,
                        radsat=radsat, metadata=scene_metadata, pan_metadata=pan_metadata)


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
