"""What the consistency step and the input noise filter cost next to the default model's
networks, in one run.

On one batch of ``harmonize``'s tiles (output 512 px, batch 4, a smooth field with noise), it
times, interleaved and repeated (the fastest repeat of each is reported):

- the networks: the default ensemble's forward passes (``make_predictor`` with its views);
- the plain consistency step: one back-projection of the residual as it is;
- the step as ``harmonize`` runs it: two back-projections, each with the residual through the
  Wiener filter against its own noise (the wavelet estimate per tile and band, on the CPU),
  and the level and pan terms of σ (the pan's regression on the bands per tile, on the CPU);
- the input noise filter ``harmonize`` runs before the networks
  (:mod:`s2l8h.inference.denoise`: the weak-texture noise model, then non-local means over
  the visible and the infrared bands, each group at once, and over the pan, per tile, on the
  CPU);
- the detail shrink ``harmonize`` runs last with the filter
  (:func:`s2l8h.inference.consistency.shrink_detail`, the noise models given).

    python benchmarks/consistency_step.py
"""

from __future__ import annotations

import argparse
import time

import torch

from s2l8h.defaults import DEFAULT_MODEL
from s2l8h.inference.consistency import ConsistentPredictor, shrink_detail
from s2l8h.inference.denoise import band_noise_models, filter_bands, filter_pan
from s2l8h.inference.harmonize import ensemble_calibration, ensemble_views, resolve_models
from s2l8h.inference.uncertainty import Prediction, Predictor, make_predictor


class Fixed(Predictor):
    """The networks' output of the batch, given again without running them."""

    def __init__(self, networks: Predictor, outputs: Prediction) -> None:
        self.models, self.method, self.outputs = networks.models, networks.method, outputs

    @property
    def gives_variance(self) -> bool:
        return True

    def __call__(self, multispectral: torch.Tensor, pan: torch.Tensor | None) -> Prediction:
        return self.outputs


def timed(function) -> float:
    """Seconds one call of ``function`` takes."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=512, help="output px (10 m)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    side = args.tile // 3
    smooth = torch.nn.functional.interpolate(torch.rand(args.batch, 6, side // 8, side // 8),
                                             size=(side, side), mode="bicubic")
    multispectral = (0.05 + 0.2 * smooth + 0.002 * torch.randn(args.batch, 6, side, side))
    pan = torch.nn.functional.interpolate(multispectral[:, 1:4].mean(1, keepdim=True),
                                          scale_factor=2, mode="bicubic")
    models = resolve_models([DEFAULT_MODEL])
    calibration = ensemble_calibration(models)
    networks = make_predictor(models, variance_scale=calibration.variance_scale,
                              views=ensemble_views(models))
    with torch.no_grad():
        fixed = Fixed(networks, networks(multispectral, pan))
        plain = ConsistentPredictor(fixed, steps=1, denoise=False)
        full = ConsistentPredictor(fixed, level_variance_scale=calibration.level_variance_scale,
                                   pan_variance_scale=calibration.pan_variance_scale,
                                   band_variance_factors=calibration.band_variance_factors)
        models = band_noise_models(multispectral)
        filled = torch.zeros((args.batch, 1, side, side), dtype=torch.bool)
        mean = fixed.outputs[0]
        seconds = {"networks": [], "plain step": [], "step as harmonize runs it": [],
                   "input noise filter": [], "detail shrink": []}
        for _ in range(args.repeats):  # interleaved, so a slower moment hits all of them
            seconds["networks"].append(timed(lambda: networks(multispectral, pan)))
            seconds["plain step"].append(timed(lambda: plain(multispectral, pan)))
            seconds["step as harmonize runs it"].append(timed(lambda: full(multispectral, pan)))
            seconds["input noise filter"].append(
                timed(lambda: (filter_bands(multispectral), filter_pan(pan))))
            seconds["detail shrink"].append(timed(lambda: shrink_detail(mean, models, filled)))
    base = min(seconds["networks"])
    print(f"{DEFAULT_MODEL}, {args.batch} tiles of {args.tile} px, "
          f"{torch.get_num_threads()} threads; fastest of {args.repeats}")
    print("| part | seconds per batch | / networks |")
    print("|---|---|---|")
    for name, values in seconds.items():
        print(f"| {name} | {min(values):.3f} | {min(values) / base:.3f} |")


if __name__ == "__main__":
    main()
