"""Multiply-adds per output pixel and measured throughput of the demo model (``lite``) against
the published 5-depth-upsample UNet, in one run, on the same input and the same tiles.

    python benchmarks/model_speed.py --size 1536
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from s2l8h import create_model
from s2l8h.inference.tiling import predict_array
from s2l8h.inference.uncertainty import SingleModel
from s2l8h.models import get_spec, macs_per_output_pixel


def measure(name: str, multispectral: np.ndarray, pan: np.ndarray, tile: int, overlap: int,
            repeats: int) -> tuple[float, float]:
    """(seconds of the fastest repeat, output megapixels) for a tiled prediction; weights
    are random (speed does not depend on them)."""
    torch.manual_seed(0)
    predictor = SingleModel(create_model(name), use_head=False)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        mean, _ = predict_array(predictor, multispectral, pan, tile=tile, overlap=overlap,
                                batch_size=1)
        times.append(time.perf_counter() - started)
    return min(times), mean.shape[1] * mean.shape[2] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1536, help="output px (10 m), square")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    lowres = args.size // 3
    rng = np.random.default_rng(0)
    multispectral = (0.05 + 0.3 * rng.random((6, lowres, lowres))).astype(np.float32)
    pan = (0.05 + 0.3 * rng.random((1, 2 * lowres, 2 * lowres))).astype(np.float32)
    rows = []
    for name in ("lite", "unet5-upsample"):
        spec = get_spec(name)
        macs = macs_per_output_pixel(spec.architecture, spec.config, spec.convention)
        seconds, megapixels = measure(name, multispectral, pan, args.tile, args.overlap,
                                      args.repeats)
        rows.append((name, macs, megapixels / seconds, seconds))
    print(f"threads {torch.get_num_threads()}, {args.size}² output px, tile {args.tile}, "
          f"overlap {args.overlap}, batch 1, best of {args.repeats}\n")
    print("| model | MACs / output px | Mpx/s | seconds |\n|---|---|---|---|")
    for name, macs, rate, seconds in rows:
        print(f"| {name} | {macs / 1e3:,.1f} k | {rate:.3f} | {seconds:.1f} |")
    (_, lite_macs, lite_rate, _), (_, unet_macs, unet_rate, _) = rows
    print(f"\nlite vs unet5-upsample: {unet_macs / lite_macs:.1f}x fewer multiply-adds, "
          f"{lite_rate / unet_rate:.1f}x the throughput")


if __name__ == "__main__":
    main()
