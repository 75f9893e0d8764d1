"""The tags an output carries about how it was made: version, models, inputs, options, the
input checks and the output's consistency with its input (``s2l8h qa`` prints them; the batch
catalogue reads ``S2L8H_MODELS``). Values are strings, most of them JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from s2l8h import __version__
from s2l8h.io.landsat import LandsatScene, describe_inputs


def provenance_tags(scene: LandsatScene, *, models: Sequence[str],
                    model_provenance: Sequence[Mapping[str, object]], uncertainty: str,
                    options: Mapping[str, object], checks: Mapping[str, str] | None = None,
                    extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The file tags of a harmonized ``scene``: ``models`` (names), their provenance, the
    ``uncertainty`` method, the recorded ``options``, the input checks' tags and ``extra``
    tags (e.g. a batch run's), the later ones winning on a clash."""
    level = "L2 surface reflectance" if scene.level == "L2" else "L1 TOA reflectance (TOA mode)"
    return {
        "S2L8H_VERSION": __version__,
        "S2L8H_MODELS": json.dumps(list(models)),
        "S2L8H_MODEL_PROVENANCE": json.dumps(list(model_provenance)),
        "S2L8H_UNCERTAINTY": uncertainty,
        "S2L8H_INPUTS": json.dumps(describe_inputs(scene)),
        "S2L8H_SCENE": scene.name,
        "S2L8H_LEVEL": level,
        "S2L8H_OPTIONS": json.dumps(dict(options)),
        **(checks or {}),
        **(extra or {}),
    }


def consistency_tags(report: Mapping[str, object]) -> dict[str, str]:
    """The tag of the output's consistency with its input (known once it is all written)."""
    return {"S2L8H_CONSISTENCY": json.dumps(dict(report))}
