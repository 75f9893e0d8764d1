"""What a model expects as input and what it returns: bands, radiometry and grids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s2l8h.bands import (
    LANDSAT_BANDS,
    PAN_RADIOMETRY,
    PAN_TOA_NO_SUN_CORRECTION,
    PAN_TOA_SUN_CORRECTED,
    SENTINEL2_BANDS,
)
from s2l8h.models._config import DictConfig

MULTISPECTRAL_RADIOMETRY = ("surface-reflectance", "toa-reflectance")
INPUT_GRIDS = ("10m-bicubic", "native")


@dataclass(frozen=True)
class InputConvention(DictConfig):
    """The input contract of a model.

    - ``multispectral_bands``: Landsat bands in channel order, reflectance (unitless, 0-1).
    - ``multispectral_radiometry``: ``surface-reflectance`` (Collection-2 Level-2 SR,
      DN x 2.75e-5 - 0.2) or ``toa-reflectance``.
    - ``pan_radiometry``: band 8 as Level-1 TOA reflectance without (published models) or with
      the sun-elevation correction.
    - ``input_grid``: ``10m-bicubic``: every input is bicubic-interpolated
      (``torch.nn.functional.interpolate(mode="bicubic", align_corners=False)``) to the 10 m
      output size before the network (the published UNets); ``native``: the network takes the
      30 m bands and the 15 m pan as they are and upsamples itself.
    - ``output_bands``: Sentinel-2 L2A bands in channel order, reflectance (unitless).
    - ``scale``: output pixels per 30 m input pixel along each axis.
    """

    multispectral_bands: tuple[str, ...] = LANDSAT_BANDS
    use_pan: bool = True
    multispectral_radiometry: str = "surface-reflectance"
    pan_radiometry: str = PAN_TOA_NO_SUN_CORRECTION
    input_grid: str = "10m-bicubic"
    output_bands: tuple[str, ...] = SENTINEL2_BANDS
    scale: int = 3

    def __post_init__(self) -> None:
        if self.multispectral_radiometry not in MULTISPECTRAL_RADIOMETRY:
            raise ValueError(
                f"multispectral_radiometry must be one of {MULTISPECTRAL_RADIOMETRY}, "
                f"got {self.multispectral_radiometry!r}"
            )
        if self.pan_radiometry not in PAN_RADIOMETRY:
            raise ValueError(
                f"pan_radiometry must be one of {PAN_RADIOMETRY}, got {self.pan_radiometry!r}"
            )
        if self.input_grid not in INPUT_GRIDS:
            raise ValueError(f"input_grid must be one of {INPUT_GRIDS}, got {self.input_grid!r}")
        unknown = set(self.multispectral_bands) - set(LANDSAT_BANDS)
        if unknown:
            raise ValueError(f"unknown Landsat bands {sorted(unknown)}; known: {LANDSAT_BANDS}")

    @property
    def in_channels(self) -> int:
        return len(self.multispectral_bands) + int(self.use_pan)

    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        values["multispectral_bands"] = list(self.multispectral_bands)
        values["output_bands"] = list(self.output_bands)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InputConvention:
        values = dict(values)
        for key in ("multispectral_bands", "output_bands"):
            if key in values:
                values[key] = tuple(values[key])
        return super().from_dict(values)

    def describe(self) -> str:
        """One line: radiometry, bands, pan convention, input grid."""
        radiometry = "SR" if self.multispectral_radiometry == "surface-reflectance" else "TOA"
        pan = ""
        if self.use_pan:
            corrected = self.pan_radiometry == PAN_TOA_SUN_CORRECTED
            sun = "sun corr." if corrected else "no sun corr."
            pan = f" + pan TOA ({sun})"
        return (f"{radiometry} {len(self.multispectral_bands)} bands{pan}, {self.input_grid}, "
                f"x{self.scale} -> {len(self.output_bands)} S2 bands")


PUBLISHED_CONVENTION = InputConvention()
NATIVE_CONVENTION = InputConvention(input_grid="native")

__all__ = ["INPUT_GRIDS", "LANDSAT_BANDS", "MULTISPECTRAL_RADIOMETRY", "NATIVE_CONVENTION",
           "PAN_RADIOMETRY", "PUBLISHED_CONVENTION", "SENTINEL2_BANDS", "InputConvention"]
