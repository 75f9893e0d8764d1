"""Quality and speed of ``--precision bf16`` / ``fp16`` against fp32 on the benchmark.

Runs the reduced-resolution benchmark (``s2l8h.evaluate.benchmark.run_benchmark``, no
baselines) once per precision, the model's forward passes under that precision (the same
autocast context ``harmonize(precision=...)`` uses), and prints PSNR, SSIM, mean σ, σ
calibration and seconds per precision with their change from fp32. One run, same machine.

    nice -n 10 python benchmarks/precision.py data/s2_l1c_virginia_north \\
        --bounds 435730,4169460,450730,4172470 --model lite
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sentinel2", type=Path)
    parser.add_argument("--bounds", default=None, help="left,bottom,right,top")
    parser.add_argument("--model", default="lite")
    parser.add_argument("--precision", action="append", default=None,
                        help="repeat; default fp32 and bf16")
    args = parser.parse_args()
    from s2l8h.evaluate.benchmark import run_benchmark
    from s2l8h.inference.tiling import autocast

    bounds = tuple(float(v) for v in args.bounds.split(",")) if args.bounds else None
    precisions = args.precision or ["fp32", "bf16"]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="s2l8h-precision-") as folder:
        for precision in precisions:
            started = time.perf_counter()
            with autocast("cpu", precision):  # type: ignore[arg-type]
                result = run_benchmark(args.sentinel2, Path(folder) / precision,
                                       models=[args.model], baselines=[], bounds=bounds,
                                       report=False)
            seconds = time.perf_counter() - started
            method = next(m for m in result.methods if m.kind != "baseline")
            overall = method.metrics["overall"]
            uncertainty = method.metrics.get("uncertainty") or {}
            sigma = float(np.nanmean(method.std[:, result.valid])) \
                if method.std is not None else float("nan")  # mean σ on scored pixels
            rows[precision] = {"psnr": overall["psnr"], "ssim": overall["ssim"],
                               "sigma": sigma,
                               "coverage_68": uncertainty.get("coverage_68", float("nan")),
                               "model_seconds": method.seconds, "seconds": seconds}
    reference = rows[precisions[0]]
    print(f"model {args.model}, bounds {args.bounds}")
    print("| precision | PSNR | ΔPSNR dB | SSIM | mean σ | Δσ (relative) | cov68 | "
          "model s | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for precision, row in rows.items():
        print(f"| {precision} | {row['psnr']:.4f} | {row['psnr'] - reference['psnr']:+.4f} | "
              f"{row['ssim']:.5f} | {row['sigma']:.6f} | "
              f"{row['sigma'] / reference['sigma'] - 1:+.3%} | {row['coverage_68']:.4f} | "
              f"{row['model_seconds']:.2f} | "
              f"{reference['model_seconds'] / row['model_seconds']:.2f}x |")


if __name__ == "__main__":
    main()
