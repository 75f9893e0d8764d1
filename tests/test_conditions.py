"""The benchmark under named conditions, the real-data (Wald) mode, and the detail metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from s2l8h.bands import SENTINEL2_BANDS as BANDS
from s2l8h.cli.app import app
from s2l8h.evaluate.metrics import (
    flat_area_noise,
    flat_pixels,
    high_frequency_detail,
    high_frequency_ratio,
    high_frequency_skill,
    noise_gain,
    ssim,
)
from s2l8h.models.factory import create_model
from s2l8h.models.loading import save_pretrained

ROOT = Path(__file__).parents[1]
VIRGINIA = ROOT / "data" / "s2_l1c_virginia_north"
FLORIDA_CROP = ROOT / "src" / "s2l8h" / "examples" / "florida_crop"
runner = CliRunner()


def test_detail_metrics_on_known_images() -> None:
    rng = np.random.default_rng(0)
    truth = ndimage.gaussian_filter(rng.uniform(0, 0.4, (6, 120, 120)), (0, 1, 1))
    assert high_frequency_ratio(truth, truth) == pytest.approx([1.0] * 6)
    blurred = ndimage.gaussian_filter(truth, (0, 2, 2))
    sharpened = truth + 1.0 * (truth - blurred)
    assert all(r < 0.5 for r in high_frequency_ratio(blurred, truth))
    assert all(r > 1.5 for r in high_frequency_ratio(sharpened, truth))
    noisy = truth + rng.normal(0, 0.01, truth.shape)
    # Skill: all of the detail right, none of it, or detail in the wrong place.
    assert high_frequency_skill(truth, truth) == pytest.approx([1.0] * 6)
    smooth = ndimage.gaussian_filter(truth, (0, 8, 8))
    assert all(abs(s) < 0.05 for s in high_frequency_skill(smooth, truth))
    moved = np.roll(truth, 3, axis=-1)
    assert all(r == pytest.approx(1.0, abs=0.05) for r in high_frequency_ratio(moved, truth))
    assert all(s < -0.5 for s in high_frequency_skill(moved, truth))
    # Over-sharpening raises the ratio above 1 and lowers the skill below the truth's 1.
    assert all(s < 0.9 for s in high_frequency_skill(sharpened, truth))
    # The conditional mean of the truth given a noisy view has ratio = skill: a Wiener
    # estimate of truth + white noise, with the truth's own (known) spectrum.
    observed = truth + rng.normal(0, 0.02, truth.shape)
    spectrum = np.abs(np.fft.fft2(truth - truth.mean(axis=(1, 2), keepdims=True))) ** 2
    noise_power = 0.02**2 * truth.shape[1] * truth.shape[2]
    wiener = np.real(np.fft.ifft2(np.fft.fft2(observed - truth.mean(axis=(1, 2), keepdims=True))
                                  * spectrum / (spectrum + noise_power)))
    wiener += truth.mean(axis=(1, 2), keepdims=True)
    ratio, skill = high_frequency_ratio(wiener, truth), high_frequency_skill(wiener, truth)
    assert all(0.2 < s < 0.9 for s in skill)
    assert ratio == pytest.approx(skill, abs=0.05)
    assert flat_area_noise(truth, truth) == pytest.approx(0.0, abs=1e-12)
    assert flat_area_noise(noisy, truth) == pytest.approx(0.01 * 0.85, rel=0.2)


def test_noise_gain_of_known_responses() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, (6, 40, 40))
    everywhere = np.ones((120, 120), bool)
    copied = np.kron(noise, np.ones((3, 3)))  # the input's noise on a 3x finer grid
    assert noise_gain(copied, copied, everywhere) == pytest.approx([1.0] * 6)
    assert noise_gain(2 * copied, copied, everywhere) == pytest.approx([2.0] * 6)
    assert all(g < 0.5 for g in noise_gain(ndimage.gaussian_filter(copied, (0, 3, 3)),
                                            copied, everywhere))
    # Only the flat pixels count (where the noise is larger too, as signal-dependent noise
    # is), and non-finite pixels of either are left out.
    half = np.zeros((120, 120), bool)
    half[:, :60] = True
    response, holed = copied.copy(), copied.copy()
    response[:, :, 60:] *= 10
    holed[:, :, 60:] *= 3
    holed[:, :15] = np.nan
    assert noise_gain(response, holed, half) == pytest.approx([1.0] * 6)
    # The flattest pixels of an image that is flat on the left and textured on the right.
    truth = np.zeros((6, 60, 60))
    truth[:, :, 30:] = rng.uniform(0, 0.4, (6, 60, 30))
    flat = flat_pixels(truth, fraction=0.3)
    assert flat[4:56, 4:28].all() and not flat[:, 28:].any()  # ties at zero all count


def test_detail_and_similarity_measures_need_enough_pixels() -> None:
    rng = np.random.default_rng(2)
    truth = ndimage.gaussian_filter(rng.uniform(0, 0.4, (6, 20, 20)), (0, 1, 1))
    noisy = truth + rng.normal(0, 0.01, truth.shape)
    # 20 x 20: 144 pixels 4 px inside, enough for the detail measures; 14 flat ones are not.
    ratios, skills = high_frequency_detail(noisy, truth)
    assert all(np.isfinite(ratios)) and all(np.isfinite(skills))
    assert np.isnan(flat_area_noise(noisy, truth))
    assert not flat_pixels(truth[:, :11, :11]).any()  # 9 pixels 4 px inside
    # 11 x 11: 9 pixels inside; nothing is measured from so few.
    ratios, skills = high_frequency_detail(noisy[:, :11, :11], truth[:, :11, :11])
    assert all(np.isnan(ratios)) and all(np.isnan(skills))
    few = np.zeros((20, 20), bool)
    few[5:10, 5:10] = True  # 25 flat pixels
    assert all(np.isnan(noise_gain(2 * noisy, noisy, few)))
    # SSIM is NaN, not an error, when no pixel has its whole 7 x 7 window valid.
    checkerboard = (np.indices((20, 20)).sum(axis=0) % 2).astype(bool)
    assert np.isnan(ssim(noisy, truth, checkerboard))
    assert np.isnan(ssim(noisy[:, :5, :5], truth[:, :5, :5]))  # no 7 x 7 window fits
    assert 0 < ssim(noisy, truth) < 1


def test_the_wald_protocol_on_a_small_area_leaves_unmeasurable_figures_out(
        tmp_path: Path) -> None:
    # 26 x 26 px of the example, 18 x 18 for the protocol: 12 x 12 scored, 4 x 4 of them
    # 4 px inside (fewer than MIN_MEASURED_PIXELS).
    result = runner.invoke(app, [
        "benchmark", str(FLORIDA_CROP), "--real", "--toa", "-o", str(tmp_path / "wald"),
        "--bounds", "465000,3392000,465810,3392810", "--baselines", "bicubic,mtf-glp", "-q"])
    assert result.exit_code == 0, result.output

    def refuse(constant: str) -> None:
        raise AssertionError(f"results.json holds {constant}")

    document = json.loads((tmp_path / "wald" / "results.json").read_text(),
                          parse_constant=refuse)
    detail = document["methods"]["mtf-glp"]["detail"]
    assert detail["hf_ratio"] is None and detail["flat_noise"] is None
    assert document["methods"]["mtf-glp"]["overall"]["psnr"] > 20
    row = next(line for line in (tmp_path / "wald" / "results.md").read_text().splitlines()
               if line.startswith("| mtf-glp |"))
    # HF ratio, its bands, HF skill, flat noise: not measured on this crop.
    assert row.split(" | ")[11:15] == ["–", "–", "–", "–"]


def test_benchmark_conditions_one_table_each(tmp_path: Path) -> None:
    model = save_pretrained(create_model("lite", width=8, blocks=1, variance_head=True),
                            tmp_path / "tiny")
    result = runner.invoke(app, [
        "benchmark", str(VIRGINIA), "-o", str(tmp_path / "bench"), "--bounds",
        "440730,4173460,443730,4176460", "--conditions", "clean,noise-0.002,pan-shift",
        "--model", str(model), "--baselines", "bicubic,mtf-glp", "-q"])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "bench" / "results.md").read_text()
    for name in ("## clean", "## noise-0.002", "## pan-shift", "## PSNR (dB) per condition",
                 "| tiny − best baseline |"):
        assert name in markdown.replace("**", "")
    document = json.loads((tmp_path / "bench" / "results.json").read_text())
    conditions = document["conditions"]
    assert list(conditions) == ["clean", "noise-0.002", "pan-shift"]
    assert conditions["noise-0.002"]["settings"]["degradation"]["noise_std"] == 0.002
    clean, noisy = (conditions[name]["methods"]["bicubic"] for name in ("clean", "noise-0.002"))
    assert noisy["overall"]["psnr"] < clean["overall"]["psnr"]
    assert noisy["detail"]["flat_noise"] > clean["detail"]["flat_noise"]
    # Noise gain, measured against the clean run: interpolation smooths the input's noise,
    # pan sharpening adds the pan's; only noise-only conditions have one.
    gains = {name: conditions["noise-0.002"]["methods"][name]["detail"]["noise_gain"]
             for name in ("bicubic", "mtf-glp", "tiny")}
    assert 0.5 < gains["bicubic"] < 0.95 and gains["mtf-glp"] > gains["bicubic"]
    assert 0 < gains["tiny"] < 10
    # A model's run records how far its networks would move each band's level (harmonize's
    # tiles; an uncalibrated model: not in σ); a baseline has none.
    shift = conditions["clean"]["methods"]["tiny"]["level_shift"]
    assert shift["tiles"] >= 1 and shift["restored"] and not shift["in_sigma"]
    assert len(shift["median"]) == 6 and all(value is not None for value in shift["median"])
    assert "level_shift" not in conditions["clean"]["methods"]["bicubic"]
    assert "noise_gain" not in clean["detail"]
    assert "noise_gain" not in conditions["pan-shift"]["methods"]["tiny"]["detail"]
    assert "## Noise gain" in markdown
    # The summary gives the bands' mean and the largest band's gain; each condition's table
    # and the CSV give every band's.
    tiny = conditions["noise-0.002"]["methods"]["tiny"]["detail"]
    per_band = {band: tiny[f"noise_gain_{band}"] for band in BANDS}
    largest = max(per_band, key=lambda band: per_band[band])
    assert np.isclose(np.mean(list(per_band.values())), gains["tiny"])
    gain_table = markdown.split("## Noise gain")[1].split("## clean")[0]
    summary_row = next(line for line in gain_table.splitlines() if line.startswith("| tiny | "))
    assert summary_row == (f"| tiny | {gains['tiny']:.2f} ({largest} "
                           f"{per_band[largest]:.2f}) |")
    section = markdown.split("## noise-0.002")[1].split("## pan-shift")[0]
    tiny_row = next(line for line in section.splitlines() if line.startswith("| tiny | "))
    assert " / ".join(f"{per_band[band]:.2f}" for band in BANDS) in tiny_row
    ratios = " / ".join(f"{tiny[f'hf_ratio_{band}']:.2f}" for band in BANDS)
    assert ratios in tiny_row
    for name in ("clean", "pan-shift"):
        methods = conditions[name]["methods"]
        assert set(methods) == {"bicubic", "mtf-glp", "tiny"}
        assert "uncertainty" in methods["tiny"] and "hf_ratio" in methods["tiny"]["detail"]
        # Pansharpening gets more of the true detail than interpolation does.
        assert methods["mtf-glp"]["detail"]["hf_skill"] > methods["bicubic"]["detail"]["hf_skill"]
    # A pan shifted by half a pan pixel costs pan sharpening accuracy.
    assert conditions["pan-shift"]["methods"]["mtf-glp"]["overall"]["psnr"] < \
        conditions["clean"]["methods"]["mtf-glp"]["overall"]["psnr"]
    rows = (tmp_path / "bench" / "results.csv").read_text().splitlines()
    assert rows[0].startswith("condition,method,kind,PSNR") and len(rows) == 1 + 3 * 3
    assert "noise gain B8A" in rows[0].split(",") and "HF ratio B12" in rows[0].split(",")
    assert (tmp_path / "bench" / "report.html").read_text().count("data:image/png") >= 4
    unknown = runner.invoke(app, ["benchmark", str(VIRGINIA), "-o", str(tmp_path / "b2"),
                                  "--conditions", "foggy", "--baselines", "bicubic"])
    assert unknown.exit_code != 0 and "unknown conditions ['foggy']" in unknown.output


def test_a_misregistered_condition_scores_the_moved_truth(tmp_path: Path) -> None:
    """Under misregistration the table holds what a perfect reconstruction of the scene as
    Landsat saw it scores; it is neither a model nor a baseline."""
    result = runner.invoke(app, [
        "benchmark", str(VIRGINIA), "-o", str(tmp_path / "bench"), "--bounds",
        "440730,4173460,443730,4176460", "--conditions", "clean,misregistration",
        "--baselines", "bicubic,mtf-glp", "-q"])
    assert result.exit_code == 0, result.output
    conditions = json.loads((tmp_path / "bench" / "results.json").read_text())["conditions"]
    reference = "truth, misregistered (reference)"
    assert set(conditions["clean"]["methods"]) == {"bicubic", "mtf-glp"}
    moved = conditions["misregistration"]["methods"][reference]
    assert moved["kind"] == "reference"
    # 15 m of misregistration costs a perfect reconstruction more than 3 dB, and more than
    # it costs the blurrier baselines: on this crop it scores below even bicubic.
    clean_best = max(m["overall"]["psnr"] for m in conditions["clean"]["methods"].values())
    misregistered = conditions["misregistration"]["methods"]
    assert moved["overall"]["psnr"] < clean_best - 3
    assert moved["overall"]["psnr"] < min(misregistered[name]["overall"]["psnr"]
                                          for name in ("bicubic", "mtf-glp"))
    summary = (tmp_path / "bench" / "results.md").read_text().replace("**", "")
    row = next(line for line in summary.splitlines() if line.startswith(f"| {reference} |"))
    assert row.split("|")[2].strip() == "–"
    assert f"| {reference} − best baseline | – |" in summary


def test_conditions_given_as_named_degradations(tmp_path: Path) -> None:
    """``run_conditions`` takes ``{name: Degradation}`` (what benchmarks/misregistration.py
    sweeps): each runs under its own name, a noise-only one gets its noise gain, a shifted
    one the moved truth, which scores lower the larger the shift."""
    from s2l8h.data.simulate import CONDITIONS, Degradation
    from s2l8h.evaluate.benchmark import MISREGISTERED_TRUTH, run_conditions

    degradations = {"clean": CONDITIONS["clean"], "noisy": Degradation(noise_std=0.002),
                    "shift-6m": Degradation(shift_ms=(3.6, -4.8)),
                    "shift-15m": Degradation(shift_ms=(9.0, -12.0))}
    suite = run_conditions(VIRGINIA, tmp_path / "bench", degradations,
                           baselines=("bicubic",), bounds=(440730, 4173460, 443730, 4176460),
                           report=False)
    assert list(suite.results) == list(degradations)
    assert suite.results["shift-6m"].settings["degradation"]["shift_ms"] == [3.6, -4.8]
    bicubic = {name: next(m for m in result.methods if m.name == "bicubic")
               for name, result in suite.results.items()}
    assert 0.5 < bicubic["noisy"].metrics["detail"]["noise_gain"] < 0.95
    assert all("noise_gain" not in bicubic[name].metrics["detail"]
               for name in ("clean", "shift-6m", "shift-15m"))
    moved = {name: next(m for m in suite.results[name].methods if m.name == MISREGISTERED_TRUTH)
             for name in ("shift-6m", "shift-15m")}
    assert moved["shift-15m"].metrics["overall"]["psnr"] \
        < moved["shift-6m"].metrics["overall"]["psnr"] - 3
    assert not any(m.name == MISREGISTERED_TRUTH for m in suite.results["clean"].methods)
    assert bicubic["shift-15m"].metrics["overall"]["psnr"] \
        < bicubic["shift-6m"].metrics["overall"]["psnr"] \
        < bicubic["clean"].metrics["overall"]["psnr"]
    # Noise gain is measured against the clean simulation only, whatever is named "clean".
    shifted = run_conditions(VIRGINIA, tmp_path / "shifted", {
        "clean": Degradation(shift_ms=(3.6, -4.8)), "noisy": Degradation(noise_std=0.002)},
        baselines=("bicubic",), bounds=(440730, 4173460, 443730, 4176460), report=False)
    assert "noise_gain" not in shifted.results["noisy"].methods[0].metrics["detail"]
    # A name is a folder of the output: nothing is written for one that is not.
    from s2l8h.errors import OptionError

    with pytest.raises(OptionError, match=r"condition names \['../up'\] are not folder names"):
        run_conditions(VIRGINIA, tmp_path / "bad", {"../up": Degradation()},
                       baselines=("bicubic",), report=False)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "up").exists()


def test_real_landsat_reduced_resolution_protocol(tmp_path: Path) -> None:
    model = save_pretrained(create_model("lite", width=8, blocks=1, variance_head=True),
                            tmp_path / "tiny")
    result = runner.invoke(app, [
        "benchmark", str(FLORIDA_CROP), "--real", "--toa", "-o", str(tmp_path / "wald"),
        "--model", str(model), "--baselines", "bicubic,mtf-glp,gsa", "-q"])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "wald" / "results.json").read_text())
    settings, methods = document["settings"], document["methods"]
    assert settings["protocol"].startswith("reduced resolution (Wald)")
    assert settings["radiometry"] == "OLI TOA reflectance (TOA mode)"
    assert settings["pixels_scored"] > 5_000
    # The real 30 m bands are the reference: the pan adds true detail to bicubic.
    assert methods["mtf-glp"]["overall"]["psnr"] > methods["bicubic"]["overall"]["psnr"]
    assert "uncertainty" in methods["tiny"]
    # The whole scene is one tile of the predictor.
    assert methods["tiny"]["level_shift"]["tiles"] == 1
    assert len(methods["tiny"]["level_shift"]["median"]) == 6
    assert "Real Landsat, reduced-resolution protocol" in \
        (tmp_path / "wald" / "results.md").read_text()


def test_a_wrong_model_fails_before_any_simulation(tmp_path: Path, monkeypatch) -> None:
    from s2l8h.evaluate import benchmark

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated before the models were checked")

    monkeypatch.setattr(benchmark, "simulate_landsat", no_simulation)
    for conditions in ([], ["--conditions", "clean,realistic"]):
        result = runner.invoke(app, ["benchmark", str(VIRGINIA), "--model",
                                     str(tmp_path / "missing-release"), "-o",
                                     str(tmp_path / "out"), *conditions])
        assert result.exit_code == 2, result.output
        assert "missing-release: no such file or folder" in result.output
        assert not (tmp_path / "out" / "results.md").exists()


def test_the_wald_protocol_adds_a_calibrated_ensembles_noise_term(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """On real Landsat, σ² (OLI radiometry) = f · the members' σ² + g · n_b², n_b the degraded
    input's noise as harmonize measures it; the members given one by one get neither term."""
    from s2l8h.evaluate.wald import run_wald
    from s2l8h.models import registry

    members = ("lite2.real-wald3-a", "lite2.real-wald3-b")
    monkeypatch.setitem(registry._ENSEMBLES, "noise-pair",
                        registry.EnsembleRelease("noise-pair", members, "", 0.5, 4.0))
    result = run_wald(FLORIDA_CROP, tmp_path / "wald", models=["noise-pair", "+".join(members)],
                      baselines=[], toa=True, report=False)
    calibrated, plain = result.methods
    noise = np.array(calibrated.input_noise)
    assert calibrated.input_noise == plain.input_noise and noise.min() > 0.0005
    expected = np.sqrt(0.5 * plain.std.astype(np.float64) ** 2 + 4.0 * noise[:, None, None] ** 2)
    assert np.allclose(calibrated.std[:, result.valid], expected[:, result.valid], rtol=1e-4)
    assert np.array_equal(calibrated.prediction, plain.prediction)
