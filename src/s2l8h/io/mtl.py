"""Landsat MTL metadata, as JSON (Collection 2) or as ``GROUP = ... END_GROUP`` text."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2l8h.io.errors import InputError


def parse_mtl(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse an MTL file into nested dicts; the top level is ``LANDSAT_METADATA_FILE`` (C2) or
    ``L1_METADATA_FILE`` (Collection 1 and pre-collection). Values stay strings."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot read MTL metadata ({error})") from None
    if text.lstrip().startswith(("{", "[")):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(path, f"MTL JSON is not valid ({error})") from None
        if not isinstance(document, dict):
            raise InputError(path, "MTL JSON is not an object")
        return document
    return _parse_odl(text, path)


def _parse_odl(text: str, path: Path) -> dict[str, Any]:
    root: dict[str, Any] = {}
    stack: list[dict[str, Any]] = [root]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line == "END":
            continue
        if "=" not in line:
            raise InputError(path, f"line {number} is not KEY = value: {line!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        if key == "GROUP":
            group: dict[str, Any] = {}
            stack[-1][value] = group
            stack.append(group)
        elif key == "END_GROUP":
            if len(stack) == 1:
                raise InputError(path, f"line {number}: END_GROUP without GROUP")
            stack.pop()
        else:
            stack[-1][key] = value.strip('"')
    if len(stack) != 1:
        raise InputError(path, "MTL text ends inside a GROUP (truncated file?)")
    return root


def _find(document: dict[str, Any], key: str) -> str | None:
    """First value of ``key`` anywhere in the nested groups."""
    for name, value in document.items():
        if name == key and not isinstance(value, dict):
            return str(value)
        if isinstance(value, dict):
            found = _find(value, key)
            if found is not None:
                return found
    return None


#: Level-1 processing levels whose geolocation had no ground control points (systematic or
#: terrain-corrected without them): Collection 1/2 L1GT, L1GS, and the pre-collection L1G.
WITHOUT_GROUND_CONTROL = ("L1GT", "L1GS", "L1G")


#: Collection-1/2 product ids (``LC08_L1TP_195025_20130707_20170503_01_T1``): the collection
#: number and the tier; pre-collection scene ids (``LC80200392015216LGN00``).
_PRODUCT_ID = re.compile(r"^L[COTE]0[89]_L\w{3}_\d{6}_\d{8}_\d{8}_(?P<collection>\d{2})_"
                         r"(?P<tier>\w{2})$")
_PRE_COLLECTION_ID = re.compile(r"^L[COTE][89]\d{13}[A-Z]{3}\d{2}$")
PRE_COLLECTION = "pre-collection"


@dataclass(frozen=True)
class Geolocation:
    """What an MTL says of a scene's geolocation: its Level-1 processing level (``L1TP``,
    ``L1GT``, ``L1T`` ...; a Level-2 product's Level-1 source), its collection (``"02"``,
    ``"01"``, :data:`PRE_COLLECTION`; ``None``: unknown), its tier (``T1``, ``T2``, ``RT``;
    ``None`` before the collections) and the RMSE of its geometric model's fit to ground
    control (``GEOMETRIC_RMSE_MODEL``, metres; ``None`` without ground control)."""

    level1: str | None
    collection: str | None
    tier: str | None
    rmse_model_m: float | None

    @property
    def ground_control(self) -> bool | None:
        """Whether ground control points placed the scene (``None``: level unknown)."""
        return None if self.level1 is None else self.level1 not in WITHOUT_GROUND_CONTROL

    def to_dict(self) -> dict[str, Any]:
        return {"level1": self.level1, "collection": self.collection, "tier": self.tier,
                "rmse_model_m": self.rmse_model_m}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Geolocation:
        """From :meth:`to_dict`'s form (an output's tag); keys it lacks are ``None``, keys it
        does not know are left out."""
        return cls(*(values.get(name) for name in ("level1", "collection", "tier",
                                                   "rmse_model_m")))


@dataclass(frozen=True)
class LandsatMetadata:
    """The MTL facts s2l8h uses. Angles in degrees, dates ISO strings."""

    path: Path
    spacecraft: str  # LANDSAT_8 | LANDSAT_9
    scene_id: str
    date_acquired: str
    sun_elevation: float
    processing_level: str  # L2SP, L2SR, L1TP, L1T, ...
    document: dict[str, Any]

    def require(self, key: str) -> str:
        value = _find(self.document, key)
        if value is None:
            raise InputError(self.path, f"MTL has no {key}")
        return value

    def reflectance_rescaling(self, band: int) -> tuple[float, float]:
        """Level-1 TOA reflectance rescaling (mult, add) of ``band``: ρ' = mult × DN + add."""
        try:
            mult = float(self.require(f"REFLECTANCE_MULT_BAND_{band}"))
            add = float(self.require(f"REFLECTANCE_ADD_BAND_{band}"))
        except ValueError as error:
            raise InputError(self.path,
                             f"band {band} rescaling is not a number ({error})") from None
        return mult, add

    @property
    def sun_elevation_sine(self) -> float:
        return math.sin(math.radians(self.sun_elevation))

    def geolocation(self) -> Geolocation:
        """:class:`Geolocation` from the MTL's ``PROCESSING_LEVEL``/``DATA_TYPE`` values (the
        first Level-1 one: a Level-2 MTL names its Level-1 source in its processing record),
        ``COLLECTION_NUMBER`` and ``COLLECTION_CATEGORY`` (else the product id's),
        ``GEOMETRIC_RMSE_MODEL``; what is absent or not a number is ``None``."""
        levels = [str(value) for key, value in _values(self.document)
                  if key in ("PROCESSING_LEVEL", "DATA_TYPE")]
        level1 = next((level for level in levels if level.startswith("L1")), None)
        try:
            rmse = float(_find(self.document, "GEOMETRIC_RMSE_MODEL") or "nan")
        except ValueError:
            rmse = math.nan
        named = _PRODUCT_ID.match(self.scene_id)
        collection = _find(self.document, "COLLECTION_NUMBER")
        if collection is not None:
            collection = collection.zfill(2)
        elif named:
            collection = named["collection"]
        elif _PRE_COLLECTION_ID.match(self.scene_id):
            collection = PRE_COLLECTION
        tier = _find(self.document, "COLLECTION_CATEGORY") or (named["tier"] if named else None)
        return Geolocation(level1, collection, tier,
                           rmse if math.isfinite(rmse) and rmse >= 0 else None)


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: Physical ranges of the Level-1 reflectance rescaling: ρ' = MULT × DN + ADD, DN up to 65535.
_RESCALING_RANGES = {"REFLECTANCE_MULT_BAND_": (0.0, 1e-3), "REFLECTANCE_ADD_BAND_": (-1.0, 1.0)}


def _values(document: dict[str, Any]):
    for key, value in document.items():
        if isinstance(value, dict):
            yield from _values(value)
        else:
            yield key, value


def _check_rescaling(document: dict[str, Any], path: Path) -> None:
    """Every REFLECTANCE_MULT/ADD_BAND_n is a number in its physical range."""
    for key, value in _values(document):
        for prefix, (low, high) in _RESCALING_RANGES.items():
            if not key.startswith(prefix):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InputError(path, f"{key} is not a number: {value!r}") from None
            if not (math.isfinite(number) and low <= number <= high) or \
                    (prefix == "REFLECTANCE_MULT_BAND_" and number == 0):
                raise InputError(path, f"{key} = {number:g} is outside the physical range "
                                 f"({low:g}, {high:g}]")


def find_value(document: dict[str, Any], key: str) -> str | None:
    """First value of ``key`` anywhere in the MTL's nested groups (``None`` if absent)."""
    return _find(document, key)


def read_metadata(path: str | os.PathLike[str]) -> LandsatMetadata:
    """Parse and check an MTL file (JSON or text)."""
    path = Path(path)
    document = parse_mtl(path)
    if not any(key in document for key in ("LANDSAT_METADATA_FILE", "L1_METADATA_FILE")):
        raise InputError(path, "not a Landsat MTL (no LANDSAT_METADATA_FILE/L1_METADATA_FILE)")
    level = _find(document, "PROCESSING_LEVEL") or _find(document, "DATA_TYPE") or ""
    scene_id = _find(document, "LANDSAT_PRODUCT_ID") or _find(document, "LANDSAT_SCENE_ID") or ""
    metadata = LandsatMetadata(
        path=path,
        spacecraft=_find(document, "SPACECRAFT_ID") or "",
        scene_id=scene_id,
        date_acquired=_find(document, "DATE_ACQUIRED") or "",
        sun_elevation=0.0,
        processing_level=level,
        document=document,
    )
    try:
        sun = float(metadata.require("SUN_ELEVATION"))
    except ValueError:
        raise InputError(path, "SUN_ELEVATION is not a number") from None
    if not 0 < sun <= 90:
        raise InputError(path, f"SUN_ELEVATION {sun:g}° is outside (0, 90]: the sun is at or "
                         "below the horizon (a night scene?), reflectance is undefined")
    if metadata.spacecraft not in ("LANDSAT_8", "LANDSAT_9"):
        raise InputError(path, f"spacecraft {metadata.spacecraft or '?'} is not Landsat-8 or -9")
    _check_rescaling(document, path)
    if metadata.date_acquired and not _ISO_DATE.match(metadata.date_acquired):
        raise InputError(path, f"DATE_ACQUIRED {metadata.date_acquired!r} is not YYYY-MM-DD")
    return LandsatMetadata(path, metadata.spacecraft, scene_id, metadata.date_acquired, sun,
                           level, document)
