"""NASA HLS v2.0 bandpass adjustment between Sentinel-2 MSI and Landsat OLI.

OLI = slope × MSI + offset, per band (B02/blue, B03/green, B04/red, B8A/nir, B11/swir1,
B12/swir2) and per Sentinel-2 platform; reflectance units.

S2A and S2B are the published HLS v2.0 coefficients (Claverie et al. 2018, HLS v2.0 user
guide). No HLS coefficients for Sentinel-2C were published when this was written; ``S2C``
is the mean of S2A and S2B, whose spectral responses it was built to match (an
approximation, used only to vary the bandpass in simulations).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from s2l8h.errors import OptionError

Platform = Literal["S2A", "S2B", "S2C"]

#: (slope, offset) per band in the order B02, B03, B04, B8A, B11, B12.
HLS_BANDPASS: dict[str, tuple[tuple[float, float], ...]] = {
    "S2A": ((0.9778, -0.0040), (1.0053, -0.0009), (0.9765, 0.0009), (0.9983, -0.0001),
            (0.9987, -0.0011), (1.0030, -0.0012)),
    "S2B": ((0.9778, -0.0040), (1.0075, -0.0008), (0.9761, 0.0010), (0.9966, 0.0000),
            (1.0000, -0.0003), (0.9867, 0.0004)),
}
HLS_BANDPASS["S2C"] = tuple(
    ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    for a, b in zip(HLS_BANDPASS["S2A"], HLS_BANDPASS["S2B"], strict=True))
PLATFORMS: tuple[str, ...] = ("S2A", "S2B", "S2C")


def _coefficients(platform: Platform) -> tuple[np.ndarray, np.ndarray]:
    try:
        table = np.asarray(HLS_BANDPASS[platform])
    except KeyError:
        raise OptionError(f"platform must be one of {PLATFORMS}, got {platform!r}"
                          ) from None
    return table[:, 0].reshape(6, 1, 1), table[:, 1].reshape(6, 1, 1)


def msi_to_oli(reflectance: np.ndarray, platform: Platform = "S2A") -> np.ndarray:
    """Sentinel-2 (6, H, W) reflectance to what OLI would measure."""
    slope, offset = _coefficients(platform)
    return (slope * reflectance + offset).astype(reflectance.dtype)


def oli_to_msi(reflectance: np.ndarray, platform: Platform = "S2A") -> np.ndarray:
    """Inverse of :func:`msi_to_oli`."""
    slope, offset = _coefficients(platform)
    return ((reflectance - offset) / slope).astype(reflectance.dtype)
