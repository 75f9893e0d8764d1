"""Decoding Landsat quality bands into named boolean flags.

Three layouts exist: Collection-2 ``QA_PIXEL``, Collection-1 ``BQA`` and the pre-collection
``BQA`` (before 2017); Collection 2 flags saturation in a separate ``QA_RADSAT`` band.
Confidence pairs count as set at ``high`` (3); Collection-1 saturation (bits 2-3) counts when
any band is saturated. Bits follow the USGS product guides.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from s2l8h.bands import QA_PIXEL_BITS

QaLayout = Literal["qa_pixel", "bqa_c1", "bqa_pre"]
FLAGS: tuple[str, ...] = ("fill", "dilated_cloud", "cirrus", "cloud", "shadow", "snow", "water",
                          "saturated")
#: QA_RADSAT bits of the six reflective bands used (band n is bit n - 1: bands 2-7).
RADSAT_BITS = (1, 2, 3, 4, 5, 6)
DEFAULT_MASK_FLAGS: tuple[str, ...] = ("cloud", "dilated_cloud", "shadow")


def _bit(qa: np.ndarray, bit: int) -> np.ndarray:
    return ((qa >> bit) & 1).astype(bool)


def _pair(qa: np.ndarray, bit: int) -> np.ndarray:
    return ((qa >> bit) & 0b11).astype(np.uint8)


def decode_quality(qa: np.ndarray, layout: QaLayout) -> dict[str, np.ndarray]:
    """Boolean arrays for every name in :data:`FLAGS` (flags a layout lacks are all False)."""
    qa = np.asarray(qa).astype(np.int64) & 0xFFFF  # int16 files carry the same bits
    none = np.zeros(qa.shape, dtype=bool)
    if layout == "qa_pixel":
        return {"saturated": none, **{flag: _bit(qa, bit) for flag, bit in QA_PIXEL_BITS.items()}}
    if layout == "bqa_c1":
        return {
            "saturated": _pair(qa, 2) > 0,
            "fill": _bit(qa, 0),
            "dilated_cloud": none,
            "cirrus": _pair(qa, 11) == 3,
            "cloud": _bit(qa, 4),
            "shadow": _pair(qa, 7) == 3,
            "snow": _pair(qa, 9) == 3,
            "water": none,
        }
    if layout == "bqa_pre":
        return {
            "saturated": none,
            "fill": _bit(qa, 0),
            "dilated_cloud": none,
            "cirrus": _pair(qa, 12) == 3,
            "cloud": _pair(qa, 14) == 3,
            "shadow": none,
            "snow": _pair(qa, 10) == 3,
            "water": _pair(qa, 4) == 3,
        }
    raise ValueError(f"unknown QA layout {layout!r}")


def saturated(radsat: np.ndarray) -> np.ndarray:
    """Pixels whose QA_RADSAT marks any of the six reflective bands (2-7) as saturated."""
    radsat = np.asarray(radsat).astype(np.int64)
    flagged = np.zeros(radsat.shape, dtype=bool)
    for bit in RADSAT_BITS:
        flagged |= ((radsat >> bit) & 1).astype(bool)
    return flagged


def quality_mask(qa: np.ndarray, layout: QaLayout,
                 flags: tuple[str, ...] = DEFAULT_MASK_FLAGS,
                 radsat: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(fill, masked)``: fill pixels, and pixels carrying any of ``flags`` (``saturated``
    comes from ``radsat``, the QA_RADSAT band, when given; else from the Collection-1 BQA)."""
    unknown = set(flags) - set(FLAGS)
    if unknown:
        raise ValueError(f"unknown quality flags {sorted(unknown)}; known: {', '.join(FLAGS)}")
    decoded = decode_quality(qa, layout)
    if radsat is not None:
        decoded["saturated"] = saturated(radsat)
    masked = np.zeros(qa.shape, dtype=bool)
    for flag in flags:
        masked |= decoded[flag]
    return decoded["fill"], masked & ~decoded["fill"]
