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
whose whole neighbourhood looks alike, so texture that repeats nowhere is left as it is. The
bands are filtered in two groups (:data:`BAND_GROUPS`): blue, green and red together, and NIR,
SWIR1 and SWIR2 together; the pan alone. The noise is per band a variance model σ²(ρ) = a + b ·
ρ: the tile's own (:func:`~s2l8h.noise.weak_texture_noise`), but never below
:data:`OLI_NOISE_FLOOR` x OLI's nominal model (:func:`~s2l8h.noise.oli_noise_model`: the
weak-texture estimate misses part of a noise as small as OLI's, and the filter's strength then
moves with that miss); the band is made of unit noise by the generalised Anscombe transform
2 √(a + b ρ) / b before the filter and brought back after it. ``harmonize`` feeds the networks
the filtered input, checks their output against the filtered bands and shrinks the output's
detail against the same noise models
(:class:`~s2l8h.inference.consistency.ConsistentPredictor` with ``filter_input``,
:func:`~s2l8h.inference.consistency.shrink_detail`).

Measured with ``lite2.real-wald7`` (two consistency steps) on the validation rows, with the
benchmark's noise gain (output response over input noise on the flattest 10 % of the truth)
under OLI's noise, 3 x OLI's, white noise of 0.001 and 0.002:

- without the filter: 1.33 / 1.27 / 1.21 / 1.21;
- the first form (all six bands together, the output checked against the bands as they are;
  the default of 2026-12-07): 0.92 / 0.77 / 0.71 / 0.64 for −0.00 to −0.02 dB in 13 of the 14
  simulated conditions, +0.08 dB at 0.002 and ±0.00 on real Florida (Wald);
- checked against the filtered bands instead: 0.74 / 0.67 / 0.58 / 0.42 (the back-projection
  no longer puts the noise the filter took out back in), PSNR +0.01 dB under OLI's, 3 x and
  0.001, −0.04 dB at 0.002, equal clean, ``realistic``, with a sharper PSF and on Florida;
- and the groups: 0.74 / 0.66 / 0.57 / 0.41, every band ≤ 0.92 under OLI's noise (B8A), the
  same PSNR ±0.01 dB. All six bands together made a textured band's output move with the
  other bands' noise through the shared weights: on a farmland crop (Virginia, 1.8 km, white
  noise of 0.002) the filtered NIR responded to the noise over the flattest pixels with
  1.15 x that noise (in the groups 1.02 x; each band alone 0.94 x, but then B8A's gain on
  the validation rows under OLI's noise rose to 1.03).

The floor was chosen there as the least of 1, 2 and 4 x OLI's variance that keeps every
band's gain under OLI's noise below 1 (in the form of today: 1 x: 1.06, B8A 1.25; 2 x: 0.88,
B8A 1.10; 4 x: 0.74, B8A 0.92; PSNR within 0.01 dB of each other). On the farmland crop NIR
and SWIR stay amplified (one member of ``lite2.real-wald``: B8A 2.01 -> 1.81, blue 1.12 ->
0.53): their field texture keeps the filter from averaging, and the networks amplify what is
left.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from skimage.restoration import denoise_nl_means

from s2l8h.noise import OLI_PAN, oli_noise_model, weak_texture_noise

#: The least noise variance the filter assumes, in multiples of OLI's nominal model.
OLI_NOISE_FLOOR = 4.0
#: Non-local means: patch side and search distance (pixels), and h in units of the noise σ.
NLM_PATCH = 5
NLM_DISTANCE = 6
NLM_H = 0.8
#: The bands (indices into B, G, R, NIR, SWIR1, SWIR2) that :func:`filter_bands` filters
#: together: the visible and the infrared.
BAND_GROUPS = ((0, 1, 2), (3, 4, 5))
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


def tile_noise_models(values: torch.Tensor, usable: torch.Tensor, channels: Sequence[int]
                      ) -> torch.Tensor:
    """(N, C, 2) per tile of ``values`` (N, C, h, w) and channel its :func:`noise_models`
    (a, b) over the tile's ``usable`` (N, h, w) pixels; (0, 0) (no noise) for a tile with
    fewer than :data:`MIN_FILTER_PIXELS` of them. float64 on the CPU."""
    data = values.detach().cpu().double().numpy()
    keep = usable.detach().cpu().numpy().astype(bool)
    models = np.zeros((len(data), len(channels), 2))
    for tile, mask, out in zip(data, keep, models, strict=True):
        if mask.sum() >= MIN_FILTER_PIXELS:
            out[:] = noise_models(tile, mask, channels)
    return torch.from_numpy(models)


def band_noise_models(multispectral: torch.Tensor) -> torch.Tensor:
    """(N, 6, 2) the :func:`tile_noise_models` of the first six bands of ``multispectral``
    (N, C, h, w) over their usable pixels (not filled: all six exactly 0), as
    :func:`filter_bands` filters against."""
    bands = multispectral[:, :6]
    return tile_noise_models(bands, ~(bands == 0).all(dim=1), range(6))


def nonlocal_means(values: torch.Tensor, usable: torch.Tensor, channels: Sequence[int],
                   groups: Sequence[Sequence[int]] | None = None,
                   models: torch.Tensor | None = None) -> torch.Tensor:
    """``values`` (N, C, h, w) reflectance filtered per tile by non-local means, the channels
    of each of ``groups`` (indices into C; ``None``: all C at once) together, each channel
    first brought to unit noise by its :func:`noise_models` (OLI ``channels``); pixels not
    ``usable`` (N, h, w), and in each channel those so far below zero that its noise model
    gives them no variance (a + b ρ ≤ 0, below about -0.02 to -0.07 reflectance), are left
    exactly as they are (and stand in for nothing: they are filled with the channel's mean
    before the filter). A tile with fewer than :data:`MIN_FILTER_PIXELS` usable pixels is
    left as it is. ``models``: the tiles' :func:`tile_noise_models` where already known. In
    float64 on the CPU, returned on ``values``'s device and dtype."""
    if models is None:
        models = tile_noise_models(values, usable, channels)
    data = values.detach().cpu().double().numpy()
    keep = usable.detach().cpu().numpy().astype(bool)
    result = data.copy()
    for tile, mask, out, tile_models in zip(data, keep, result, models.tolist(), strict=True):
        if mask.sum() < MIN_FILTER_PIXELS:
            continue
        kept = [mask & (a + b * channel > 0) for channel, (a, b) in zip(tile, tile_models,
                                                                         strict=True)]
        unit = np.stack([_to_unit_noise(np.where(inside, channel, channel[mask].mean()), a, b)
                         for channel, inside, (a, b) in zip(tile, kept, tile_models,
                                                             strict=True)])
        options = dict(patch_size=NLM_PATCH, patch_distance=NLM_DISTANCE, h=NLM_H, sigma=1.0,
                       fast_mode=True)
        filtered = np.empty_like(unit)
        for group in [list(range(len(unit)))] if groups is None else [list(g) for g in groups]:
            if len(group) == 1:
                filtered[group[0]] = denoise_nl_means(unit[group[0]], **options)
            else:
                filtered[group] = denoise_nl_means(unit[group], channel_axis=0, **options)
        for index, (a, b) in enumerate(tile_models):
            out[index] = np.where(kept[index], _from_unit_noise(filtered[index], a, b),
                                  tile[index])
    return torch.from_numpy(result).to(values.dtype).to(values.device)


def filter_bands(multispectral: torch.Tensor, models: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """(N, C, h, w) the 30 m input with its first six bands through :func:`nonlocal_means`
    over their usable pixels, blue, green and red together and NIR, SWIR1 and SWIR2 together
    (:data:`BAND_GROUPS`), against their :func:`band_noise_models` (``models`` where already
    known); filled pixels (all six bands exactly 0) and any further channels stay as they
    are."""
    bands = multispectral[:, :6]
    usable = ~(bands == 0).all(dim=1)
    filtered = nonlocal_means(bands, usable, range(6), BAND_GROUPS, models)
    return torch.cat([filtered, multispectral[:, 6:]], dim=1)


def filter_pan(pan: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) the 15 m pan through :func:`nonlocal_means` over its usable pixels; filled
    pixels (exactly 0) stay as they are."""
    return nonlocal_means(pan, pan[:, 0] != 0, [OLI_PAN])


__all__ = ["BAND_GROUPS", "MIN_FILTER_PIXELS", "NLM_DISTANCE", "NLM_H", "NLM_PATCH",
           "OLI_NOISE_FLOOR", "band_noise_models", "filter_bands", "filter_pan", "noise_models",
           "nonlocal_means", "tile_noise_models"]
