"""The input noise filter: the networks see the 30 m bands and the 15 m pan after non-local
means against each tile's own noise, never assumed below twice OLI's nominal noise.

The networks pass the input's noise on amplified: on the Virginia validation rows
``lite2.real-wald7`` without the filter turns OLI's noise into 1.33 x that noise in flat areas
(1.53 x in B8A) and white noise of 0.002 into 1.21 x (the benchmark's noise gain, output
response over input noise on the flattest 10 % of the truth). A filter has to remove that
noise without the detail real Landsat carries, which a local filter cannot tell from noise at
30 m: a 3 x 3 Wiener filter against the wavelet noise estimate (the filter of ``--denoise``
before 2026-12-07) brought the gain under 1 for −0.15 dB on the clean simulation and −0.34 dB
on real Florida (Wald, validation rows); against a weak-texture estimate it needed 2.5 x the
noise and still cost 0.25 dB on Florida.

:func:`nonlocal_means` (scikit-image's ``denoise_nl_means``, fast mode, 5 x 5 patches searched
13 x 13 pixels around, h = 0.8 σ as its documentation advises) averages a pixel with those
whose whole neighbourhood looks alike, over the six bands at once (the pan alone), so texture
that repeats nowhere is left as it is. The noise is per band a variance model σ²(ρ) = a + b ·
ρ: the tile's own (:func:`~s2l8h.noise.weak_texture_noise`), but never below
:data:`OLI_NOISE_FLOOR` x OLI's nominal model (:func:`~s2l8h.noise.oli_noise_model`: the
weak-texture estimate misses part of a noise as small as OLI's, and the filter's strength then
moves with that miss); the band is made of unit noise by the generalised Anscombe transform
2 √(a + b ρ) / b before the filter and brought back after it.

Measured with ``lite2.real-wald7`` (two consistency steps) on the validation rows, against the
same model without the filter: noise gain 0.92 / 0.77 / 0.71 / 0.64 under OLI's noise, 3 x
OLI's, white noise of 0.001 and 0.002 (without: 1.33 / 1.27 / 1.21 / 1.21; OLI's noise per
band 0.84-0.98); PSNR −0.00 to −0.02 dB in 13 of the 14 simulated conditions, +0.08 dB at
0.002, ±0.00 on real Florida (Wald) (``scripts/calibrate_ensemble.py`` prints the first, the
benchmark's noise-gain column the second). The floor was chosen there as the least of 1, 2 and
4 x OLI's variance that keeps every band's gain under OLI's noise below 1 (with the
estimate then used, 1 x: 1.05, B8A 1.20; 2 x: 0.97, B8A 1.07; 4 x: 0.92, B8A 0.98). On a
farmland crop (Virginia, 1.8 km) NIR and SWIR stay amplified (white noise of 0.002, one
member of ``lite2.real-wald``: B8A 2.01 -> 1.76): their field texture, which the estimate
partly counts as noise, keeps the filter from flattening them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from skimage.restoration import denoise_nl_means

from s2l8h.inference.uncertainty import Prediction, WrappedPredictor
from s2l8h.noise import OLI_PAN, oli_noise_model, weak_texture_noise

#: The least noise variance the filter assumes, in multiples of OLI's nominal model.
OLI_NOISE_FLOOR = 4.0
#: Non-local means: patch side and search distance (pixels), and h in units of the noise σ.
NLM_PATCH = 5
NLM_DISTANCE = 6
NLM_H = 0.8
#: A tile with fewer usable pixels than this is left as it is.
MIN_FILTER_PIXELS = 64


def noise_models(values: np.ndarray, usable: np.ndarray, channels: Sequence[int]
                 ) -> list[tuple[float, float]]:
    """Per channel of ``values`` (C, h, w) the noise variance model (a, b), σ² = a + b · ρ,
    over its ``usable`` (h, w) pixels: the weak-texture estimate, each coefficient at least
    :data:`OLI_NOISE_FLOOR` x OLI's nominal one for that channel (``channels``: OLI indices,
    0-5 the bands, :data:`~s2l8h.noise.OLI_PAN` the pan)."""
    models = []
    for channel, index in zip(values, channels, strict=True):
        a, b = weak_texture_noise(channel, usable)
        floor_a, floor_b = oli_noise_model(index)
        models.append((max(a, OLI_NOISE_FLOOR * floor_a), max(b, OLI_NOISE_FLOOR * floor_b)))
    return models


def _to_unit_noise(values: np.ndarray, a: float, b: float) -> np.ndarray:
    """Generalised Anscombe transform: noise of variance a + b ρ becomes of variance 1."""
    if b > 0:
        return 2 * np.sqrt(np.maximum(a + b * values, 0)) / b
    return values / np.sqrt(a)


def _from_unit_noise(values: np.ndarray, a: float, b: float) -> np.ndarray:
    """The inverse of :func:`_to_unit_noise` (algebraic)."""
    if b > 0:
        return ((values * b / 2) ** 2 - a) / b
    return values * np.sqrt(a)


def nonlocal_means(values: torch.Tensor, usable: torch.Tensor, channels: Sequence[int]
                   ) -> torch.Tensor:
    """``values`` (N, C, h, w) reflectance filtered per tile by non-local means over its C
    channels at once, each first brought to unit noise by its :func:`noise_models` (OLI
    ``channels``); pixels not ``usable`` (N, h, w), and in each channel those so far below
    zero that its noise model gives them no variance (a + b ρ ≤ 0, below about -0.02 to
    -0.07 reflectance), are left exactly as they are (and stand in for nothing: they are
    filled with the channel's mean before the filter). A tile with fewer than
    :data:`MIN_FILTER_PIXELS` usable pixels is left as it is. In float64 on the CPU, returned
    on ``values``'s device and dtype."""
    data = values.detach().cpu().double().numpy()
    keep = usable.detach().cpu().numpy().astype(bool)
    result = data.copy()
    for tile, mask, out in zip(data, keep, result, strict=True):
        if mask.sum() < MIN_FILTER_PIXELS:
            continue
        models = noise_models(tile, mask, channels)
        kept = [mask & (a + b * channel > 0) for channel, (a, b) in zip(tile, models,
                                                                         strict=True)]
        unit = np.stack([_to_unit_noise(np.where(inside, channel, channel[mask].mean()), a, b)
                         for channel, inside, (a, b) in zip(tile, kept, models, strict=True)])
        options = dict(patch_size=NLM_PATCH, patch_distance=NLM_DISTANCE, h=NLM_H, sigma=1.0,
                       fast_mode=True)
        if len(unit) == 1:
            filtered = denoise_nl_means(unit[0], **options)[None]
        else:
            filtered = denoise_nl_means(unit, channel_axis=0, **options)
        for index, (a, b) in enumerate(models):
            out[index] = np.where(kept[index], _from_unit_noise(filtered[index], a, b),
                                  tile[index])
    return torch.from_numpy(result).to(values.dtype).to(values.device)


def filter_bands(multispectral: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) the 30 m input with its first six bands through :func:`nonlocal_means`
    over their usable pixels; filled pixels (all six bands exactly 0) and any further
    channels stay as they are."""
    bands = multispectral[:, :6]
    usable = ~(bands == 0).all(dim=1)
    filtered = nonlocal_means(bands, usable, range(6))
    return torch.cat([filtered, multispectral[:, 6:]], dim=1)


def filter_pan(pan: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) the 15 m pan through :func:`nonlocal_means` over its usable pixels; filled
    pixels (exactly 0) stay as they are."""
    return nonlocal_means(pan, pan[:, 0] != 0, [OLI_PAN])


class InputFilteredPredictor(WrappedPredictor):
    """``predictor`` fed the 30 m bands after :func:`filter_bands` and the pan after
    :func:`filter_pan` (module docstring). Put it inside
    :class:`~s2l8h.inference.consistency.ConsistentPredictor`, which then checks the output
    against the unfiltered input."""

    def __call__(self, multispectral: torch.Tensor, pan: torch.Tensor | None) -> Prediction:
        with torch.autocast(multispectral.device.type, enabled=False):
            filtered = filter_bands(multispectral)
            if pan is not None:
                pan = filter_pan(pan)
        return self.predictor(filtered, pan)


__all__ = ["MIN_FILTER_PIXELS", "NLM_DISTANCE", "NLM_H", "NLM_PATCH", "OLI_NOISE_FLOOR",
           "InputFilteredPredictor", "filter_bands", "filter_pan",
           "noise_models", "nonlocal_means"]
