"""The pan's registration to the bands: one shift for the scene, or block by block.

Part 1, real Landsat: the pan's shift against the bands on the bundled Florida scene
(`data/l8_l1t_florida_20150804`, pre-collection Level-1T): over the whole scene with every
pixel and with the pixels its quality band flags as cloud or cloud shadow left out, and on
the blocks `harmonize` measures on (`s2l8h.inference.panreg`: 160 x 160 Landsat pixels;
measured shift, whether it was believed against the scene's correction, the correction
applied). Then the same checks on the bundled crop (`src/s2l8h/examples/florida_crop`).

Part 2, simulated: the held-out Virginia rows (`--bounds 435730,4169460,450730,4172470` of
`data/s2_l1c_virginia_north`, Level-1C) simulated as Landsat with OLI's noise and a pan
shifted by one amount over the western two thirds of the columns and by another over the
eastern third (default (-2.4, -5.5) and (+2.4, +5.5) m), then harmonized by the default model
with the pan not corrected, with one shift for the scene (`--no-pan-blocks`) and block by
block (the default). PSNR against the Sentinel-2 truth, west, east and all of it (6 pixels of
the edge left out). Then the same with one shift over the whole scene (the benchmark's
`pan-shift` condition's 7.5 m), where both corrections should agree.

Part 3, what a pan left off costs: the Virginia validation rows (`--bounds
435730,4172460,450730,4173960`) simulated with the pan shifted by 0-15 m along (0.4 east,
0.92 north) and harmonized with `--no-register-pan`.

Part 4, what it costs: `harmonize` on the whole Florida scene with and without
`--no-pan-blocks` (seconds of the whole run, of the measurement before it and of the read
stage, in which the pan is moved; one run each, the default model, this machine's threads).

    python benchmarks/pan_registration.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from s2l8h.data.simulate import Degradation, simulate_landsat, write_simulated_scene
from s2l8h.evaluate.benchmark import _read_scene, read_prediction
from s2l8h.inference.checks import measure_pan_shift
from s2l8h.inference.harmonize import (
    check_plan_inputs,
    harmonize,
    plan_harmonize,
    read_central_window,
)
from s2l8h.inference.options import HarmonizeOptions
from s2l8h.inference.panreg import PAN_BLOCK, measure_pan_map
from s2l8h.similarity import psnr

FLORIDA = "data/l8_l1t_florida_20150804"
BUNDLED = "src/s2l8h/examples/florida_crop"
VIRGINIA = "data/s2_l1c_virginia_north"
HELD_OUT = (435730, 4169460, 450730, 4172470)
VALIDATION = (435730, 4172460, 450730, 4173960)
EDGE = 6


def florida_map() -> None:
    """Part 1 (module docstring)."""
    options = HarmonizeOptions(toa=True, progress=False, models=("lite.virginia-sim",))
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_harmonize(FLORIDA, Path(folder) / "unused.tif", options)
        window = read_central_window(plan)
        checks = check_plan_inputs(plan, window)
        pan_map = measure_pan_map(plan.scene, plan.grid, plan.convention,
                                  options.mask_flags, checks.corrected_m)
        bundled = check_plan_inputs(plan_harmonize(BUNDLED, Path(folder) / "unused.tif",
                                                   options))
    strip, valid = window.strip, window.strip.valid
    pan_valid = (strip.pan[0] != 0).reshape(valid.shape[0], 2, valid.shape[1], 2).all(
        axis=(1, 3))
    every = measure_pan_shift(strip.multispectral, strip.pan[0], valid & pan_valid)
    print(f"Florida, whole scene ({valid.shape[0]} x {valid.shape[1]} px at 30 m), pan shift "
          f"dx, dy m: every pixel {every[0]:+.1f}, {every[1]:+.1f}; without the "
          f"{window.flagged[valid].mean():.0%} flagged as cloud or shadow "
          f"{checks.pan_shift_m[0]:+.1f}, {checks.pan_shift_m[1]:+.1f} (the scene's "
          f"correction {checks.corrected_m[0]:+.1f}, {checks.corrected_m[1]:+.1f})")
    print(f"per block of {PAN_BLOCK} x {PAN_BLOCK} px, west to east: measured dx, dy m "
          "(* believed) -> corrected")
    rows, columns = pan_map.shape
    for row in range(rows):
        cells = []
        for block in pan_map.blocks[row * columns:(row + 1) * columns]:
            star = "*" if block.believed else " "
            measured = "      -     " if block.measured is None else \
                f"{block.measured[0]:+4.1f},{block.measured[1]:+4.1f}{star}"
            cells.append(f"{measured} -> {block.corrected[0]:+4.1f},{block.corrected[1]:+4.1f}")
        print(f"  y {pan_map.blocks[row * columns].y:9.0f}: " + " | ".join(cells))
    print(f"bundled crop: pan shift {bundled.pan_shift_m[0]:+.1f}, "
          f"{bundled.pan_shift_m[1]:+.1f} m")


def score(prediction: np.ndarray, target: np.ndarray, valid: np.ndarray,
          columns: slice) -> float:
    keep = valid & np.isfinite(prediction).all(axis=0)
    keep[:EDGE], keep[-EDGE:], keep[:, :EDGE], keep[:, -EDGE:] = False, False, False, False
    part = np.zeros_like(keep)
    part[:, columns] = True
    return psnr(prediction[:, keep & part], target[:, keep & part])


def simulated(west: tuple[float, float], east: tuple[float, float], label: str) -> None:
    """Part 2 (module docstring)."""
    reflectance, valid, grid = _read_scene(VIRGINIA, 0.0, HELD_OUT)
    first = simulate_landsat(reflectance, valid, grid, seed=0,
                             degradation=Degradation(noise_scale=1.0, shift_pan=west))
    second = simulate_landsat(reflectance, valid, grid, seed=0,
                              degradation=Degradation(noise_scale=1.0, shift_pan=east))
    assert np.array_equal(first.multispectral, second.multispectral, equal_nan=True)
    boundary = 2 * (first.multispectral.shape[2] * 2 // 3)  # pan columns
    pan = first.pan.copy()
    pan[..., boundary:] = second.pan[..., boundary:]
    simulation = replace(first, pan=pan)
    cut = 3 * boundary // 2  # the same boundary in 10 m columns
    parts = {"west": slice(0, cut), "east": slice(cut, None), "all": slice(None)}
    print(f"\n{label}: pan shifted {west} m west of 10 m column {cut}, {east} m east of it")
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene, target = write_simulated_scene(simulation, Path(folder) / "simulation")
        output = Path(folder) / "output.tif"
        for name, options in {"pan not corrected": {"register_pan": False},
                              "one shift for the scene": {"pan_blocks": False},
                              "block by block (default)": {}}.items():
            run = harmonize(scene, output, like=target, overwrite=True, progress=False,
                            dtype="float32", mask_flags=(), **options)
            prediction, _, _ = read_prediction(output)
            scores = {part: score(prediction, simulation.target, simulation.target_valid,
                                  columns) for part, columns in parts.items()}
            figures = " | ".join(f"{part} {value:.2f}" for part, value in scores.items())
            measured = run.extra["input_checks"].pan_shift_m
            print(f"  {name:26s} PSNR dB: {figures}   (scene's shift measured "
                  f"{measured[0]:+.1f}, {measured[1]:+.1f} m)")


def cost_of_a_shift() -> None:
    """Part 3 (module docstring)."""
    reflectance, valid, grid = _read_scene(VIRGINIA, 0.0, VALIDATION)
    print("\nValidation rows, pan not corrected: PSNR dB by the pan's shift")
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for metres in (0.0, 3.0, 6.0, 9.0, 12.0, 15.0):
            shift = (round(0.4 * metres, 2), round(0.92 * metres, 2))
            simulation = simulate_landsat(reflectance, valid, grid, seed=0,
                                          degradation=Degradation(shift_pan=shift))
            scene, target = write_simulated_scene(simulation, Path(folder) / "simulation",
                                                  overwrite=True)
            output = Path(folder) / "output.tif"
            harmonize(scene, output, like=target, overwrite=True, progress=False,
                      register_pan=False, dtype="float32", mask_flags=())
            prediction, _, _ = read_prediction(output)
            value = score(prediction, simulation.target, simulation.target_valid, slice(None))
            print(f"  {metres:4.1f} m {shift}: {value:.2f}")


def running_cost() -> None:
    """Part 4 (module docstring)."""
    print("\nWhole Florida scene, seconds:")
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for blocks in (False, True):
            options = HarmonizeOptions(toa=True, progress=False, pan_blocks=blocks)
            plan = plan_harmonize(FLORIDA, Path(folder) / "unused.tif", options)
            checks = check_plan_inputs(plan)
            began = time.perf_counter()
            if blocks:
                measure_pan_map(plan.scene, plan.grid, plan.convention, options.mask_flags,
                                checks.corrected_m)
            measuring = time.perf_counter() - began
            run = harmonize(FLORIDA, Path(folder) / "output.tif", options, overwrite=True)
            stages = run.extra["stage_seconds"]
            print(f"  {'block by block' if blocks else 'one shift':15s} whole run "
                  f"{run.seconds:.1f}, the blocks' measurement {measuring:.1f}, read stage "
                  f"{stages['read']:.2f}, model {stages['model']:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--west", type=float, nargs=2, default=(-2.4, -5.5))
    parser.add_argument("--east", type=float, nargs=2, default=(2.4, 5.5))
    arguments = parser.parse_args()
    florida_map()
    simulated(tuple(arguments.west), tuple(arguments.east), "Two parts")
    simulated((7.5, 0.0), (7.5, 0.0), "One shift (the pan-shift condition)")
    cost_of_a_shift()
    running_cost()


if __name__ == "__main__":
    main()
