"""How far the Landsat bands may sit from the Sentinel-2 truth before the default model's
margin and σ give way: the benchmark under band/truth misregistrations of growing size, in
one run.

Each shift moves the simulated Landsat bands and pan together against the 10 m truth, in the
direction of the benchmark's ``misregistration`` condition (9 m east, 12 m south: 15 m), with
nothing else departing from the clean simulation. For the Virginia and Zurich rows
(``--rows validation``, the default: the rows thresholds are chosen on; ``held-out``: the
README's rows) it prints, per shift, the default model's PSNR, the best baseline (of
nearest, bicubic and MTF-GLP) and the margin over it, σ's 68 % and 95 % coverage, and what
the truth itself, moved by the shift, scores (a perfect reconstruction of what Landsat saw).
``harmonize`` cannot see this shift in its input; the figures say at which geolocation error
(``GEOMETRIC_RMSE_MODEL`` of a scene's MTL, or a Level-1 scene without ground control) the
output's σ stops covering its errors, and so when to register to a Sentinel-2 image
(``--reference``).

    python benchmarks/misregistration.py --rows validation
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from s2l8h.data.simulate import Degradation
from s2l8h.defaults import DEFAULT_MODEL
from s2l8h.evaluate.benchmark import MISREGISTERED_TRUTH, run_conditions

ROOT = Path(__file__).parents[1]
ROWS = {
    "validation": {
        "Virginia": ("data/s2_l1c_virginia_north", (435730, 4172460, 450730, 4173960)),
        "Zurich": ("data/s2_l2a_zurich_20190530", (472480, 5249860, 483500, 5251480)),
    },
    "held-out": {
        "Virginia": ("data/s2_l1c_virginia_north", (435730, 4169460, 450730, 4172470)),
        "Zurich": ("data/s2_l2a_zurich_20190530", (472480, 5246500, 483500, 5249860)),
    },
}
SHIFTS_M = (0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 20.0)
DIRECTION = (0.6, -0.8)  # east, north: the misregistration condition's (9, -12) m
BASELINES = ("nearest", "bicubic", "mtf-glp")


def sweep(path: str, bounds, folder: Path) -> list[tuple]:
    """Per shift (metres): the model's PSNR, the best baseline's name, the margin over it,
    σ's 68 % and 95 % coverage, and the moved truth's PSNR (``nan`` at 0 m)."""
    degradations = {f"shift-{shift:g}m": Degradation(
        shift_ms=(DIRECTION[0] * shift, DIRECTION[1] * shift)) for shift in SHIFTS_M}
    suite = run_conditions(ROOT / path, folder, degradations, models=(DEFAULT_MODEL,),
                           baselines=BASELINES, bounds=bounds, report=False, overwrite=True)
    rows = []
    for shift, result in zip(SHIFTS_M, suite.results.values(), strict=True):
        model = next(m for m in result.methods if m.kind == "model")
        baselines = [m for m in result.methods if m.kind == "baseline"]
        best = max(baselines, key=lambda m: m.metrics["overall"]["psnr"])
        truth = next((m for m in result.methods if m.name == MISREGISTERED_TRUTH), None)
        psnr = model.metrics["overall"]["psnr"]
        rows.append((shift, psnr, best.name, psnr - best.metrics["overall"]["psnr"],
                     model.metrics["uncertainty"]["coverage_68"],
                     model.metrics["uncertainty"]["coverage_95"],
                     truth.metrics["overall"]["psnr"] if truth else float("nan")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", choices=sorted(ROWS), default="validation")
    args = parser.parse_args()
    print(f"{DEFAULT_MODEL}, {args.rows} rows; bands and pan moved together against the truth")
    print("| rows | shift (m) | PSNR | best baseline | − best | σ cov68 | cov95 | moved truth |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as temporary:
        for scene, (path, bounds) in ROWS[args.rows].items():
            for shift, psnr, best, margin, cov68, cov95, moved in sweep(
                    path, bounds, Path(temporary) / scene):
                print(f"| {scene} | {shift:g} | {psnr:.2f} | {best} | {margin:+.2f} | "
                      f"{cov68:.3f} | {cov95:.3f} | {moved:.2f} |")


if __name__ == "__main__":
    main()
