"""The shared vocabulary of bands and radiometry, defined once for every layer.

Band names and channel order, Landsat Collection-2 Level-2 surface-reflectance scaling, the
Sentinel-2 DN offset rule and the Landsat ``QA_PIXEL`` bits. ``io`` (which reads files) and
``models`` (whose input conventions name bands and radiometry) both import this module and
never each other; it imports nothing but the standard library.

Units: reflectance is unitless (0-1); digital numbers (DN) are the integers in the files.
"""

from __future__ import annotations

import datetime as dt

#: Landsat-8/9 OLI bands a model takes, in channel order (OLI bands 2-7), STAC common names.
LANDSAT_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir08", "swir16", "swir22")
#: Sentinel-2 MSI bands a model returns, in channel order (10 m and 20 m bands).
SENTINEL2_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B8A", "B11", "B12")

#: Landsat Collection-2 Level-2 surface reflectance = DN x SR_SCALE + SR_OFFSET; DN 0 is fill.
SR_SCALE = 0.0000275
SR_OFFSET = -0.2

#: Sentinel-2 reflectance = (DN + offset) / SENTINEL2_QUANTIFICATION; DN 0 is no data.
SENTINEL2_QUANTIFICATION = 10000.0
#: The offset rule: the DN offset (``BOA_ADD_OFFSET`` for L2A, ``RADIO_ADD_OFFSET`` for L1C)
#: is SENTINEL2_BASELINE_OFFSET from processing baseline 04.00 on, which took effect on
#: SENTINEL2_OFFSET_DATE, and 0 before.
SENTINEL2_BASELINE_OFFSET = -1000.0
SENTINEL2_OFFSET_BASELINE = 4.0
SENTINEL2_OFFSET_DATE = dt.date(2022, 1, 25)

#: Level-1 pan radiometry: TOA reflectance ρ' = M x DN + A without, or ρ' / sin(sun
#: elevation) with, the sun-angle correction (the names of ``InputConvention.pan_radiometry``).
PAN_TOA_NO_SUN_CORRECTION = "toa-reflectance-no-sun-correction"
PAN_TOA_SUN_CORRECTED = "toa-reflectance-sun-corrected"
PAN_RADIOMETRY: tuple[str, ...] = (PAN_TOA_NO_SUN_CORRECTION, PAN_TOA_SUN_CORRECTED)

#: Single-bit flags of the Collection-2 ``QA_PIXEL`` band: flag name -> bit (USGS guide).
QA_PIXEL_BITS: dict[str, int] = {"fill": 0, "dilated_cloud": 1, "cirrus": 2, "cloud": 3,
                                 "shadow": 4, "snow": 5, "water": 7}


__all__ = ["LANDSAT_BANDS", "PAN_RADIOMETRY", "PAN_TOA_NO_SUN_CORRECTION",
           "PAN_TOA_SUN_CORRECTED", "QA_PIXEL_BITS", "SENTINEL2_BANDS",
           "SENTINEL2_BASELINE_OFFSET", "SENTINEL2_OFFSET_BASELINE", "SENTINEL2_OFFSET_DATE",
           "SENTINEL2_QUANTIFICATION", "SR_OFFSET", "SR_SCALE"]
