"""One interface for uncertainty: every predictor returns ``(mean, variance)``.

- ``single``: one model; variance ``None`` (no variance head) or its head's variance.
- ``ensemble``: mean of the members' means; variance = spread of the members' means
  (epistemic, population variance) + mean of their head variances where they have heads
  (aleatoric), times the ensemble's ``variance_scale`` (a registered ensemble's calibration,
  :class:`~s2l8h.models.registry.EnsembleRelease`; 1 otherwise). The default when several
  models are given. A registered ensemble may also add ``noise_variance_scale`` · n_b² per
  band, n_b the input scene's estimated noise σ (:class:`SigmaCalibration`; ``harmonize``
  adds it per scene, after the predictor), and ``level_variance_scale`` · L² per tile and
  band, L the level by which the networks depart from the input, and ``pan_variance_scale`` ·
  R² per pixel, R the pan's disagreement with the bands (the consistency step adds both,
  :class:`~s2l8h.inference.consistency.ConsistentPredictor`), and multiply the whole per
  band by ``band_variance_factors`` (the consistency step on the predictor's variance and
  those two terms, :meth:`SigmaCalibration.noise_variance` on the noise term).
- ``mc-dropout``: N stochastic passes of one model with dropout active (everything else in eval
  mode); variance = spread of the passes + mean head variance if any.
- ``head``: one model's variance head (aleatoric only).

Variances are in reflectance squared. A choice that does not fit the models is an
:class:`~s2l8h.errors.OptionError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from s2l8h.errors import OptionError
from s2l8h.models.harmonizer import Harmonizer, split_output
from s2l8h.models.views import VIEWS, apply_view, undo_view

UncertaintyMethod = Literal["auto", "ensemble", "mc-dropout", "head", "none"]
Prediction = tuple[torch.Tensor, torch.Tensor | None]


@dataclass(frozen=True)
class SigmaCalibration:
    """A registered ensemble's σ calibration (fitted on validation data): σ² =
    ``variance_scale`` · (the ensemble's variance) + ``noise_variance_scale`` · n_b² +
    ``level_variance_scale`` · L_b², n_b the input scene's estimated noise σ in band b and L_b
    the tile's level departure from the input, how far the networks moved the band's level
    (:func:`~s2l8h.inference.consistency.level_departure`) + ``pan_variance_scale`` · R², R
    the pan's disagreement with the bands per pixel
    (:func:`~s2l8h.inference.consistency.pan_disagreement`), all of it times
    ``band_variance_factors`` c_b (() for all 1); reflectance, the output's band order."""

    variance_scale: float = 1.0
    noise_variance_scale: float = 0.0
    level_variance_scale: float = 0.0
    pan_variance_scale: float = 0.0
    band_variance_factors: tuple[float, ...] = ()

    def noise_variance(self, noise: Sequence[float] | None) -> np.ndarray | None:
        """(bands, 1, 1) the term added to the variance (reflectance²) for a scene whose
        estimated noise per band is ``noise``, c_b included; ``None`` when nothing is added."""
        if not self.noise_variance_scale or not noise:
            return None
        added = self.noise_variance_scale * np.square(np.asarray(noise, dtype=np.float64))
        if self.band_variance_factors:
            added = added * np.asarray(self.band_variance_factors, dtype=np.float64)
        return added[:, None, None]


class Predictor:
    """Maps (multispectral 30 m, pan 15 m) batches to ``(mean, variance or None)``."""

    models: list[Harmonizer]
    method: str

    def __call__(self, multispectral: torch.Tensor, pan: torch.Tensor | None) -> Prediction:
        raise NotImplementedError

    @property
    def alignment(self) -> int:
        """30 m tile offsets/sizes must be multiples of this for tiling to be exact."""
        return max(int(getattr(model.config, "alignment", 1)) for model in self.models)

    @property
    def gives_variance(self) -> bool:
        raise NotImplementedError

    def to(self, device: torch.device | str) -> Predictor:
        for model in self.models:
            model.to(device)
        return self


class WrappedPredictor(Predictor):
    """A predictor that changes what ``predictor`` is given or gives: its models, method and
    variance are the wrapped one's."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.models = predictor.models
        self.method = predictor.method

    @property
    def gives_variance(self) -> bool:
        return self.predictor.gives_variance

    def to(self, device: torch.device | str) -> WrappedPredictor:
        self.predictor.to(device)
        return self


class MeanOnly(WrappedPredictor):
    """``predictor``'s mean without its variance: ``none`` for several models (the ensemble's
    mean, no σ)."""

    def __init__(self, predictor: Predictor) -> None:
        super().__init__(predictor)
        self.method = "none"

    @property
    def gives_variance(self) -> bool:
        return False

    def __call__(self, multispectral: torch.Tensor, pan: torch.Tensor | None) -> Prediction:
        mean, _ = self.predictor(multispectral, pan)
        return mean, None


class SingleModel(Predictor):
    def __init__(self, model: Harmonizer, use_head: bool = True) -> None:
        self.models = [model.eval()]
        self.use_head = use_head and model.has_variance_head
        self.method = "head" if self.use_head else "none"

    @property
    def gives_variance(self) -> bool:
        return self.use_head

    @torch.no_grad()
    def __call__(self, multispectral: torch.Tensor, pan: torch.Tensor | None) -> Prediction:
        mean, variance = split_output(self.models[0](multispectral, pan))
        return mean, variance if self.use_head else None


class Ensemble(Predictor):
    """Several models on the same input; ``views`` (one per model, default all ``identity``;
    :mod:`s2l8h.models.views`): the view of the tile each model sees, its output brought
    back before the combination."""

    def __init__(self, models: Sequence[Harmonizer], variance_scale: float = 1.0,
                 views: Sequence[str] | None = None) -> None:
        if len(models) < 2:
            raise OptionError("an ensemble needs at least two models")
        if not variance_scale > 0:
            raise OptionError(f"an ensemble's variance scale must be > 0, got {variance_scale}")
        views = tuple(views) if views else ("identity",) * len(models)
        if len(views) != len(models) or any(view not in VIEWS for view in views):
            raise OptionError(f"an ensemble of {len(models)} models needs as many views "
                              f"({', '.join(VIEWS)}), got {views}")
        self.models = [model.eval() for model in models]
        self.method = "ensemble"
        self.variance_scale = float(variance_scale)
        self.views = views

    @property
    def gives_variance(self) -> bool:
        return True

    @torch.no_grad()
    def __call__(self, multispectral: torch.Tensor, pan: torch.Tensor | None) -> Prediction:
        means, aleatoric = [], []
        for model, view in zip(self.models, self.views, strict=True):
            seen = (apply_view(multispectral, view),
                    None if pan is None else apply_view(pan, view))
            mean, variance = split_output(model(*seen))
            mean = undo_view(mean, view)
            variance = None if variance is None else undo_view(variance, view)
            means.append(mean)
            if variance is not None:
                aleatoric.append(variance)
        mean, variance = _combine(means, aleatoric)
        return mean, variance * self.variance_scale


class MCDropout(Predictor):
    def __init__(self, model: Harmonizer, passes: int = 20, seed: int = 0) -> None:
        if not model.has_dropout:
            raise OptionError(
                "MC dropout needs a model with dropout > 0 (e.g. --dropout 0.1; dropout=0.1 "
                "in Python)")
        if passes < 2:
            raise OptionError("MC dropout needs at least two passes")
        self.models = [model.eval()]
        self.passes = passes
        self.seed = seed
        self.method = "mc-dropout"

    @property
    def gives_variance(self) -> bool:
        return True

    @torch.no_grad()
    def __call__(self, multispectral: torch.Tensor, pan: torch.Tensor | None) -> Prediction:
        model = self.models[0]
        dropouts = [module for module in model.modules() if isinstance(module, torch.nn.Dropout)]
        for module in dropouts:
            module.train()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                outputs = [split_output(model(multispectral, pan)) for _ in range(self.passes)]
        finally:
            for module in dropouts:
                module.eval()
        return _combine([mean for mean, _ in outputs],
                        [variance for _, variance in outputs if variance is not None])


def _combine(means: list[torch.Tensor], aleatoric: list[torch.Tensor]) -> Prediction:
    stacked = torch.stack(means)
    mean = stacked.mean(dim=0)
    variance = stacked.var(dim=0, unbiased=False)
    if aleatoric:
        variance = variance + torch.stack(aleatoric).mean(dim=0)
    return mean, variance


def make_predictor(models: Sequence[Harmonizer], method: UncertaintyMethod = "auto",
                   mc_passes: int = 20, seed: int = 0, variance_scale: float = 1.0,
                   views: Sequence[str] | None = None) -> Predictor:
    """Choose the predictor for ``models`` and ``method`` (``auto``: ensemble for several
    models, the variance head for one model that has one, else none; ``none`` for several
    models: their ensemble's mean without σ). ``variance_scale`` multiplies an ensemble's
    variance; ``views``: its members' views (:class:`Ensemble`)."""
    if not models:
        raise OptionError("no model given")
    if method == "auto":
        if len(models) > 1:
            return Ensemble(models, variance_scale, views)
        return SingleModel(models[0])
    if method == "ensemble":
        return Ensemble(models, variance_scale, views)
    if method == "none" and len(models) > 1:
        return MeanOnly(Ensemble(models, variance_scale, views))
    if len(models) > 1:
        raise OptionError(f"uncertainty {method!r} takes one model, got {len(models)}")
    if method == "mc-dropout":
        return MCDropout(models[0], passes=mc_passes, seed=seed)
    if method == "head":
        if not models[0].has_variance_head:
            raise OptionError("uncertainty 'head' needs a model with a variance head")
        return SingleModel(models[0])
    if method == "none":
        return SingleModel(models[0], use_head=False)
    raise OptionError(f"unknown uncertainty method {method!r}")
