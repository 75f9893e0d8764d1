"""What the last step of the input noise filter, the output's detail shrunk against the input's
noise (:func:`s2l8h.inference.consistency.shrink_detail`), changes, in one run: the default
model without it (``DETAIL_NOISE_FACTOR = 0``) and with it (the default, 1), everything else
as ``harmonize`` runs.

For the Virginia and Zurich rows (``--rows validation``: the rows the step was chosen on;
``held-out``: the README's rows) under the benchmark's conditions, and for the real Florida
rows by the reduced-resolution (Wald) protocol, it prints each figure without → with:

- PSNR (dB) and its margin over the best baseline (MTF-GLP, bicubic or Brovey);
- the noise gain (:func:`s2l8h.evaluate.metrics.noise_gain`: the output's response to the
  input's noise over that noise on the flattest 10 % of the truth), bands pooled and B8A;
- the same gain over water within 150 m of a shore (water: the 10 m NIR truth below 0.06;
  land: at or above it; straight-line distance to the nearest land pixel at most 15 pixels;
  the rows' edges and pixels without truth are neither), where the filter finds few alike
  patches;
- the HF ratio (the output's high-frequency energy over the truth's);

and, per scene, how flat its "flat" pixels are: the truth's local standard deviation (5 x 5
px) there, median over the pixels, over the input's noise σ (OLI's model), per band.

    python benchmarks/detail_shrink.py --rows held-out
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from rasterio.enums import Resampling
from scipy import ndimage

import s2l8h.inference.consistency as consistency
from s2l8h.defaults import DEFAULT_MODEL
from s2l8h.evaluate.benchmark import run_conditions
from s2l8h.evaluate.metrics import BANDS, flat_pixels
from s2l8h.evaluate.wald import run_wald
from s2l8h.io.grid import warp

ROOT = Path(__file__).parents[1]
ROWS = {
    "validation": {
        "Virginia": ("data/s2_l1c_virginia_north", (435730, 4172460, 450730, 4173960)),
        "Zurich": ("data/s2_l2a_zurich_20190530", (472480, 5249860, 483500, 5251480)),
        "Florida": ("data/l8_l1t_florida_20150804", (452475, 3395595, 471285, 3398685)),
    },
    "held-out": {
        "Virginia": ("data/s2_l1c_virginia_north", (435730, 4169460, 450730, 4172470)),
        "Zurich": ("data/s2_l2a_zurich_20190530", (472480, 5246500, 483500, 5249860)),
        "Florida": ("data/l8_l1t_florida_20150804", (452475, 3390555, 471285, 3395595)),
    },
}
CONDITIONS = ["clean", "noise-oli", "noise-3x", "noise-0.001", "noise-0.002", "psf-sharper",
              "psf-blurrier", "atmosphere", "realistic"]
BASELINES = ("bicubic", "brovey", "mtf-glp")
SHORE_PIXELS = 15


def _model(methods):
    return next(method for method in methods if method.kind == "model")


def _psnr(result) -> tuple[float, float]:
    """The model's PSNR and its margin over the best baseline."""
    model = _model(result.methods)
    best = max(m.metrics["overall"]["psnr"] for m in result.methods if m.kind == "baseline")
    return model.metrics["overall"]["psnr"], model.metrics["overall"]["psnr"] - best


def _shore_gain(clean, noisy, shore: np.ndarray) -> float:
    """The model's noise gain (bands pooled) over the ``shore`` pixels where both runs are
    valid and the response and the noise are finite."""
    noise = warp(noisy.simulation.multispectral - clean.simulation.multispectral,
                 noisy.simulation.lowres_grid, noisy.simulation.target_grid, Resampling.nearest)
    response = _model(noisy.methods).prediction - _model(clean.methods).prediction
    gains = []
    for band_response, band_noise in zip(response, noise, strict=True):
        where = shore & clean.valid & noisy.valid & np.isfinite(band_response) \
            & np.isfinite(band_noise)
        if where.sum() < 500:
            return float("nan")
        gains.append(np.std(band_response[where]) / np.std(band_noise[where]))
    return float(np.mean(gains))


def simulated(path: str, bounds, folder: Path) -> tuple[dict, list[float]]:
    """Per condition (PSNR, margin, gain, gain B8A, shore gain, HF ratio); the flat pixels'
    texture over the input noise per band."""
    suite = run_conditions(ROOT / path, folder, CONDITIONS, models=(DEFAULT_MODEL,),
                           baselines=BASELINES, bounds=bounds, report=False, overwrite=True)
    results = suite.results
    clean = results["clean"]
    truth = clean.simulation.target
    nir = truth[3]
    water, land = np.isfinite(nir) & (nir < 0.06), np.isfinite(nir) & (nir >= 0.06)
    shore = water & (ndimage.distance_transform_edt(~land) <= SHORE_PIXELS)
    figures = {}
    for name, result in results.items():
        detail = _model(result.methods).metrics["detail"]
        gain = detail.get("noise_gain", float("nan"))
        figures[name] = (*_psnr(result), gain, detail.get("noise_gain_B8A", float("nan")),
                         _shore_gain(clean, result, shore) if np.isfinite(gain) else np.nan,
                         detail["hf_ratio"])
    flat = flat_pixels(truth, clean.valid)
    noisy = results["noise-oli"]
    noise = warp(noisy.simulation.multispectral - clean.simulation.multispectral,
                 noisy.simulation.lowres_grid, noisy.simulation.target_grid, Resampling.nearest)
    texture = []
    for band, band_noise in zip(truth, noise, strict=True):
        values = np.nan_to_num(band)
        local = np.sqrt(np.maximum(ndimage.uniform_filter(values ** 2, 5)
                                   - ndimage.uniform_filter(values, 5) ** 2, 0))
        texture.append(float(np.median(local[flat]) / np.std(band_noise[flat])))
    return figures, texture


def real(path: str, bounds, folder: Path) -> tuple:
    result = run_wald(ROOT / path, folder, models=(DEFAULT_MODEL,), baselines=BASELINES,
                      toa=True, bounds=bounds, report=False, overwrite=True)
    return (*_psnr(result), float("nan"), float("nan"), float("nan"),
            _model(result.methods).metrics["detail"]["hf_ratio"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", choices=sorted(ROWS), default="held-out")
    args = parser.parse_args()
    rows = ROWS[args.rows]
    runs: dict[float, dict[str, tuple]] = {}
    textures = {}
    default = consistency.DETAIL_NOISE_FACTOR
    with tempfile.TemporaryDirectory() as temporary:
        try:
            for factor in (0.0, default):
                consistency.DETAIL_NOISE_FACTOR = factor
                figures = {}
                for scene in ("Virginia", "Zurich"):
                    per_condition, textures[scene] = simulated(
                        *rows[scene], Path(temporary) / f"{scene}-{factor}")
                    figures.update({f"{scene} {name}": value
                                    for name, value in per_condition.items()})
                figures["Florida real (Wald)"] = real(*rows["Florida"],
                                                      Path(temporary) / f"florida-{factor}")
                runs[factor] = figures
        finally:
            consistency.DETAIL_NOISE_FACTOR = default

    def cell(index: int, key: str, digits: int = 2, sign: bool = False) -> str:
        before, after = runs[0.0][key][index], runs[default][key][index]
        if not np.isfinite(before):
            return "–"
        form = f"{{:{'+' if sign else ''}.{digits}f}}"
        return f"{form.format(before)} → {form.format(after)}"

    print(f"{DEFAULT_MODEL}, {args.rows} rows; without → with the detail shrink")
    print("| rows, condition | PSNR | − best baseline | noise gain | B8A | near shore | HF ratio |")
    print("|---|---|---|---|---|---|---|")
    for key in runs[0.0]:
        print(f"| {key} | {cell(0, key)} | {cell(1, key, sign=True)} | {cell(2, key)} | "
              f"{cell(3, key)} | {cell(4, key)} | {cell(5, key)} |")
    print()
    print("Flat pixels' texture (the truth's local std, median) over the input noise σ:")
    for scene, ratios in textures.items():
        print(f"- {scene}: " + ", ".join(f"{band} {ratio:.1f}"
                                         for band, ratio in zip(BANDS, ratios, strict=True)))


if __name__ == "__main__":
    main()
