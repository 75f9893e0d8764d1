"""Training losses on reflectance tensors (N, C, H, W), all means over every element, or,
given a ``mask`` (N, 1, H, W) of the pixels to score (e.g. clear pixels of a real target),
over those only (``l1``, ``mse``, ``gaussian_nll``: masked means; ``gradient``, ``ssim``:
the target takes the prediction's value outside the mask, so those pixels add no error).

- ``l1``: mean |p - t|.
- ``mse``: mean (p - t)².
- ``gradient``: mean squared difference of Sobel gradients (x and y, per channel, valid
  region); ``mixed_gradient`` = ``mse + 0.1 · gradient`` (mixed gradient error, Lu & Chen 2019).
- ``ssim``: 1 - mean SSIM, 7 x 7 uniform window, data range 1, K1 0.01, K2 0.03, sample
  covariances (scikit-image's defaults, the definition of the SSIM metric), over the region
  where the window fits.
- ``gaussian_nll``: for a variance head v: squared distance 0.5·(log v + (p - t)² / v)
  (PyTorch's ``gaussian_nll_loss``), or absolute distance: the Laplace negative
  log-likelihood with the same variance, log(2b) + |p - t| / b, b = sqrt(v / 2). With
  ``detach_mean`` the likelihood trains only the variance (the mean gets no gradient from it,
  so the other terms alone shape the prediction; cf. Seitzer et al. 2022 on NLL's pull on the
  mean).
- ``noise_response``: how much the prediction responds to the input's sensor noise where the
  target is flat (:func:`noise_response`); it needs the prediction from the same input without
  its noise, which the training module computes (``WeightedLoss`` leaves the term out).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` (N, C, H, W) over the pixels where ``mask`` (N, 1, H, W) is true
    (all pixels when ``mask`` is None)."""
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype).expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def l1(prediction: torch.Tensor, target: torch.Tensor, variance=None,
       mask: torch.Tensor | None = None) -> torch.Tensor:
    return masked_mean((prediction - target).abs(), mask)


def mse(prediction: torch.Tensor, target: torch.Tensor, variance=None,
        mask: torch.Tensor | None = None) -> torch.Tensor:
    return masked_mean((prediction - target) ** 2, mask)


def _sobel(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    channels = image.shape[1]
    kernel_x = SOBEL_X.to(image).expand(channels, 1, 3, 3)
    kernel_y = SOBEL_X.t().to(image).expand(channels, 1, 3, 3)
    return (F.conv2d(image, kernel_x, groups=channels),
            F.conv2d(image, kernel_y, groups=channels))


def gradient(prediction: torch.Tensor, target: torch.Tensor, variance=None) -> torch.Tensor:
    px, py = _sobel(prediction)
    tx, ty = _sobel(target)
    return (((px - tx) ** 2) + ((py - ty) ** 2)).mean()


def mixed_gradient(prediction: torch.Tensor, target: torch.Tensor, variance=None,
                   weight: float = 0.1) -> torch.Tensor:
    return mse(prediction, target) + weight * gradient(prediction, target)


def ssim_index(prediction: torch.Tensor, target: torch.Tensor, window: int = 7,
               data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM over the valid (unpadded) region, per the definition above."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def mean(image: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(image, window, stride=1)

    sample = window**2 / (window**2 - 1)  # sample, not population, (co)variances
    mu_p, mu_t = mean(prediction), mean(target)
    var_p = sample * (mean(prediction * prediction) - mu_p**2)
    var_t = sample * (mean(target * target) - mu_t**2)
    covariance = sample * (mean(prediction * target) - mu_p * mu_t)
    index = ((2 * mu_p * mu_t + c1) * (2 * covariance + c2)) / \
        ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return index.mean()


def ssim(prediction: torch.Tensor, target: torch.Tensor, variance=None) -> torch.Tensor:
    return 1 - ssim_index(prediction, target)


def gaussian_nll(prediction: torch.Tensor, target: torch.Tensor,
                 variance: torch.Tensor | None, distance: str = "squared",
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    if variance is None:
        raise ValueError("gaussian_nll needs a model with a variance head")
    variance = variance.clamp_min(1e-8)
    if distance == "squared":
        values = F.gaussian_nll_loss(prediction, target, variance, eps=1e-8, reduction="none")
    elif distance == "absolute":
        scale = torch.sqrt(variance / 2)
        values = torch.log(2 * scale) + (prediction - target).abs() / scale
    else:
        raise ValueError(f"distance must be squared or absolute, got {distance!r}")
    return masked_mean(values, mask)


def flat_noise_gain(noisy_mean: torch.Tensor, quiet_mean: torch.Tensor,
                    noisy_input: torch.Tensor, quiet_input: torch.Tensor,
                    target: torch.Tensor, flat_fraction: float = 0.25,
                    flat_activity: float | None = None) -> torch.Tensor:
    """(N, C) the squared noise gain of each sample and band: the mean square of the
    prediction's response to the input noise, ``noisy_mean - quiet_mean`` (N, C, H, W), over
    that of the bands' noise, ``noisy_input - quiet_input`` (N, C, h, w) brought to the
    target's grid by nearest neighbour, both over the target's flat pixels; NaN where the
    bands have no noise or the target no flat pixel. Flat: with ``flat_activity`` (reflectance)
    the pixels whose local standard deviation over 5 x 5 pixels, mean over bands, is at most
    that (the benchmark's measure of :func:`s2l8h.evaluate.metrics.flat_pixels`, there the
    flattest 10 % of a scene; on the Virginia validation rows below 0.002 over water and
    marsh); without it the ``flat_fraction`` of each sample's pixels with the least Sobel
    gradient energy (summed over bands), flat or not. Above 1: the output's noise in flat
    areas is larger than the input's. As in the benchmark's
    :func:`s2l8h.evaluate.metrics.noise_gain`, the response includes what the pan's noise
    adds, and the ratio is over the bands' noise alone."""
    if flat_activity is None:
        gx, gy = _sobel(target)
        energy = (gx ** 2 + gy ** 2).sum(dim=1, keepdim=True)  # (N, 1, H - 2, W - 2)
        threshold = torch.quantile(energy.flatten(1).float(), flat_fraction, dim=1)
        flat = energy <= threshold.to(energy)[:, None, None, None]
    else:
        mean = F.avg_pool2d(target, 5, stride=1, padding=2, count_include_pad=False)
        square = F.avg_pool2d(target ** 2, 5, stride=1, padding=2, count_include_pad=False)
        activity = (square - mean ** 2).clamp_min(0).sqrt().mean(dim=1, keepdim=True)
        flat = activity[..., 1:-1, 1:-1] <= flat_activity
    flat = flat.to(noisy_mean.dtype)
    response = ((noisy_mean - quiet_mean)[..., 1:-1, 1:-1] ** 2 * flat).sum(dim=(-2, -1))
    noise = F.interpolate((noisy_input - quiet_input).to(noisy_mean.dtype),
                          size=noisy_mean.shape[-2:], mode="nearest")
    noise = (noise[..., 1:-1, 1:-1] ** 2 * flat).sum(dim=(-2, -1))
    return torch.where(noise > 0, response / noise.clamp_min(1e-30),
                       torch.full_like(response, math.nan))


def noise_penalty(squared_gain: torch.Tensor, gain: float = 0.7,
                  bands: Sequence[int] | None = None) -> torch.Tensor:
    """Mean of max(0, g² - ``gain``²) over the finite entries of ``squared_gain`` (the
    :func:`flat_noise_gain` of each sample and band), in ``bands`` (indices; ``None``: all);
    0 when none is finite."""
    if bands is not None:
        squared_gain = squared_gain[:, list(bands)]
    noisy = torch.isfinite(squared_gain)
    excess = torch.where(noisy, (squared_gain - gain ** 2).clamp_min(0),
                         torch.zeros_like(squared_gain))
    return excess.sum() / noisy.sum().clamp_min(1)


def noise_response(noisy_mean: torch.Tensor, quiet_mean: torch.Tensor,
                   noisy_input: torch.Tensor, quiet_input: torch.Tensor, target: torch.Tensor,
                   gain: float = 0.7, flat_fraction: float = 0.25,
                   flat_activity: float | None = None,
                   bands: Sequence[int] | None = None) -> torch.Tensor:
    """:func:`noise_penalty` of the :func:`flat_noise_gain`: over the samples and ``bands``
    with input noise, a penalty on noise passed on, or amplified, where the target is flat and
    the noise is all the prediction could show; 0 when nothing has noise."""
    return noise_penalty(flat_noise_gain(noisy_mean, quiet_mean, noisy_input, quiet_input,
                                         target, flat_fraction, flat_activity), gain, bands)


LOSSES = {"l1": l1, "mse": mse, "gradient": gradient, "mixed_gradient": mixed_gradient,
          "ssim": ssim, "gaussian_nll": gaussian_nll, "noise_response": noise_response}


@dataclass(frozen=True)
class LossTerm:
    name: str
    weight: float = 1.0
    distance: str = "squared"  # gaussian_nll only
    detach_mean: bool = False  # gaussian_nll only
    gain: float = 0.7  # noise_response only: the flat-area noise gain left unpenalised
    #: noise_response only: the bands penalised (indices into B02 B03 B04 B8A B11 B12; None:
    #: all) and the flat pixels' largest 5 x 5 standard deviation (None: each sample's
    #: flattest quarter), see :func:`flat_noise_gain`.
    bands: tuple[int, ...] | None = None  # a list in a config
    flat_activity: float | None = None

    def __post_init__(self) -> None:
        if self.bands is not None:
            bands = tuple(self.bands) if isinstance(self.bands, list | tuple) else ()
            if not bands or len(set(bands)) != len(bands) or not all(
                    type(b) is int and 0 <= b < 6 for b in bands):
                raise ValueError("loss bands must be a list of distinct indices 0-5, got "
                                 f"{self.bands!r}")
            object.__setattr__(self, "bands", bands)
        if self.flat_activity is not None:
            if type(self.flat_activity) not in (int, float) or not self.flat_activity > 0:
                raise ValueError("loss flat_activity must be a number > 0 (reflectance), got "
                                 f"{self.flat_activity!r}")
            object.__setattr__(self, "flat_activity", float(self.flat_activity))
        if self.name != "noise_response" and (self.bands is not None
                                              or self.flat_activity is not None):
            raise ValueError("bands and flat_activity are options of noise_response only")
        if self.name not in LOSSES:
            raise ValueError(f"unknown loss {self.name!r}; known: {', '.join(LOSSES)}")
        if not math.isfinite(self.weight):
            raise ValueError(f"loss weight must be finite, got {self.weight}")
        if not self.gain >= 0:
            raise ValueError(f"loss gain must be >= 0, got {self.gain}")


#: Terms computed per element, so that a mask selects the pixels they average over.
MASKED_MEANS = ("l1", "mse")


class WeightedLoss:
    """Σ weight · term(prediction, target[, variance]), over the pixels of ``mask``; the
    ``noise_response`` terms (:attr:`noise_terms`) are left to the caller, which has the
    noise-free prediction they need."""

    def __init__(self, terms: Sequence[LossTerm]) -> None:
        if not terms:
            raise ValueError("at least one loss term is needed")
        self.terms = list(terms)

    @property
    def needs_variance(self) -> bool:
        return any(term.name == "gaussian_nll" for term in self.terms)

    @property
    def noise_terms(self) -> list[LossTerm]:
        """The ``noise_response`` terms."""
        return [term for term in self.terms if term.name == "noise_response"]

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor,
                 variance: torch.Tensor | None = None, mask: torch.Tensor | None = None
                 ) -> torch.Tensor:
        if mask is not None and bool(mask.all()):
            mask = None
        total = prediction.new_zeros(())
        for term in self.terms:
            if term.name == "noise_response":
                continue
            if term.name == "gaussian_nll":
                mean = prediction.detach() if term.detach_mean else prediction
                value = gaussian_nll(mean, target, variance, term.distance, mask)
            elif mask is None:
                value = LOSSES[term.name](prediction, target)
            elif term.name in MASKED_MEANS:
                value = LOSSES[term.name](prediction, target, mask=mask)
            else:
                filled = torch.where(mask, target, prediction.detach())
                value = LOSSES[term.name](prediction, filled)
            total = total + term.weight * value
        return total
