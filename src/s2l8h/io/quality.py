"""Decoding Landsat quality bands into named boolean flags.

Three layouts exist: Collection-2 ``QA_PIXEL``, Collection-1 ``BQA`` and the pre-collection
``BQA`` (before 2017). Confidence pairs count as set at ``high`` (3), and for cloud shadow in
Collection 1 also at high only. Bits follow the USGS product guides.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

QaLayout = Literal["qa_pixel", "bqa_c1", "bqa_pre"]
FLAGS: tuple[str, ...] = ("fill", "dilated_cloud", "cirrus", "cloud", "shadow", "snow", "water")
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
        return {
            "fill": _bit(qa, 0),
            "dilated_cloud": _bit(qa, 1),
            "cirrus": _bit(qa, 2),
            "cloud": _bit(qa, 3),
            "shadow": _bit(qa, 4),
            "snow": _bit(qa, 5),
            "water": _bit(qa, 7),
        }
    if layout == "bqa_c1":
        return {
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
            "fill": _bit(qa, 0),
            "dilated_cloud": none,
            "cirrus": _pair(qa, 12) == 3,
            "cloud": _pair(qa, 14) == 3,
            "shadow": none,
            "snow": _pair(qa, 10) == 3,
            "water": _pair(qa, 4) == 3,
        }
    raise ValueError(f"unknown QA layout {layout!r}")


def quality_mask(qa: np.ndarray, layout: QaLayout,
                 flags: tuple[str, ...] = DEFAULT_MASK_FLAGS) -> tuple[np.ndarray, np.ndarray]:
    """``(fill, masked)``: fill pixels, and pixels carrying any of ``flags``."""
    unknown = set(flags) - set(FLAGS)
    if unknown:
        raise ValueError(f"unknown quality flags {sorted(unknown)}; known: {', '.join(FLAGS)}")
    decoded = decode_quality(qa, layout)
    masked = np.zeros(qa.shape, dtype=bool)
    for flag in flags:
        masked |= decoded[flag]
    return decoded["fill"], masked & ~decoded["fill"]
