"""``create_model``: a registered model, with random weights or a release's, as
``timm.create_model`` does.

Above both :mod:`s2l8h.models.registry` (names and configurations) and
:mod:`s2l8h.models.loading` (weights), which do not import it.
"""

from __future__ import annotations

from typing import Any

from s2l8h.models.harmonizer import Harmonizer
from s2l8h.models.loading import load_model, load_release
from s2l8h.models.registry import build_network, get_spec


def create_model(name: str, pretrained: bool | str | None = None, **overrides: Any) -> Harmonizer:
    """Build the registered model ``name`` (a model name, or a release name ``model.tag``).

    ``pretrained``: ``None``/``False`` for random weights (the model is named after the
    model, ``lite2``); ``True`` for the release's weights (``lite2.realistic``, or the
    model's default release for a bare name: bundled, or a hub id through the huggingface_hub
    cache); a path or hub id to load those weights instead (their architecture must match).
    ``overrides`` change config fields (e.g. ``dropout=0.1``; parameter-free fields only
    when loading weights). Unknown names raise :class:`~s2l8h.errors.UnknownModelError`.
    """
    spec = get_spec(name)
    if pretrained in (None, False):
        config = {**spec.config, **overrides}
        return Harmonizer(build_network(spec.architecture, config), spec.convention,
                          spec.architecture, name=spec.name,
                          provenance={"weights": "random initialization"})
    if pretrained is True:
        return load_release(spec, overrides=overrides)
    model = load_model(str(pretrained), expect_architecture=(spec.architecture, spec.config),
                       overrides=overrides)
    model.name = spec.name
    return model


__all__ = ["create_model"]
