"""Patch datasets: window sampling, cutting, writing, TorchGeo-style samples, transforms."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from affine import Affine
from odc.geo.geobox import GeoBox
from torch.utils.data import default_collate

from s2l8h.data import patches, transforms
from s2l8h.data.patches import (
    CSV_NAME,
    GridSampler,
    PatchDataset,
    QualityFilter,
    Window,
    extract_patches,
    read_table,
    write_patches,
    write_table,
)
from s2l8h.data.transforms import RandomDihedral, dihedral
from s2l8h.errors import InputError

GRID30 = GeoBox((40, 24), Affine(30, 0, 600000.0, 0, -30, 4200000.0), "EPSG:32618")
SPLITS = {"Train": (0, 20), "Validation": (20, 30), "Test": (30, 40)}


def test_grid_sampler_windows_stay_inside_their_split() -> None:
    sampler = GridSampler(SPLITS, width=24, size=8, stride=4)
    windows = list(sampler)
    assert len(sampler) == len(windows) == (4 + 1 + 1) * 5
    assert windows[:6] == [Window("Train", 0, col, 8) for col in (0, 4, 8, 12, 16)] + \
        [Window("Train", 4, 0, 8)]
    assert [w.row for w in windows if w.split == "Validation"] == [20] * 5
    for window in windows:
        start, stop = SPLITS[window.split]
        assert start <= window.row and window.row + window.size <= stop
        assert window.col + window.size <= 24
    assert len(GridSampler({"Train": (0, 7)}, width=24, size=8, stride=4)) == 0
    with pytest.raises(ValueError, match="stride must be 1 or more"):
        GridSampler(SPLITS, width=24, size=8, stride=0)


def _scene_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """30 m bands whose values encode the pixel, and the 15 m pan and 10 m target that
    repeat them (2 x 2 and 3 x 3 blocks), as reflectance in 0..0.5."""
    rows, cols = GRID30.shape
    values = (np.arange(6 * rows * cols, dtype=np.float32).reshape(6, rows, cols)
              / (6 * rows * cols * 2))
    return values, np.kron(values[:1], np.ones((2, 2), np.float32)), \
        np.kron(values, np.ones((3, 3), np.float32))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    multispectral, pan, target = _scene_arrays()
    cut = extract_patches(multispectral, pan, target, GRID30, size=8, stride=4,
                          splits=SPLITS, scene_landsat="L8", scene_sentinel2="S2")
    write_table(tmp_path, write_patches(tmp_path, cut))
    return tmp_path


def test_patches_are_cut_aligned_with_their_bounds(folder: Path) -> None:
    rows = read_table(folder)
    assert len(rows) == len(GridSampler(SPLITS, 24, size=8, stride=4))
    everything = QualityFilter(0.0, -1.0)
    dataset = PatchDataset(folder, "Validation", quality=everything, in_memory=False)
    sample = dataset[2]  # the window at row 20, col 8
    assert sample["patch_id"] == "L8_r00020_c00008"
    multispectral, pan, target = _scene_arrays()
    np.testing.assert_array_equal(sample["image"].numpy(), multispectral[:, 20:28, 8:16])
    np.testing.assert_array_equal(sample["pan"].numpy(), pan[:, 40:56, 16:32])
    np.testing.assert_array_equal(sample["target"].numpy(), target[:, 60:84, 24:48])
    assert sample["crs"] == "EPSG:32618"
    left, top = 600000.0 + 8 * 30, 4200000.0 - 20 * 30
    assert sample["bounds"] == (left, top - 8 * 30, left + 8 * 30, top)


def test_samples_batch_with_default_collate_and_take_transforms(folder: Path) -> None:
    seen = []

    def record(sample: dict) -> dict:
        seen.append(sample["patch_id"])
        return {**sample, "image": sample["image"] * 2}

    plain = PatchDataset(folder, "Train", quality=QualityFilter(0.0, -1.0))
    doubled = PatchDataset(folder, "Train", quality=QualityFilter(0.0, -1.0),
                           transforms=record)
    assert torch.equal(doubled[3]["image"], 2 * plain[3]["image"])
    assert seen == [plain[3]["patch_id"]]
    batch = default_collate([plain[i] for i in range(4)])
    assert batch["image"].shape == (4, 6, 8, 8) and batch["pan"].shape == (4, 1, 16, 16)
    assert batch["target"].shape == (4, 6, 24, 24) and batch["crs"] == ["EPSG:32618"] * 4


def _rewrite_table(folder: Path, **values: str) -> None:
    rows = [{**row, **values} for row in read_table(folder)]
    with (folder / CSV_NAME).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_table_without_georeference_gives_samples_without_it(folder: Path) -> None:
    _rewrite_table(folder, crs="", bounds="")
    samples = [PatchDataset(folder, "Test", quality=QualityFilter(0.0, -1.0))[i]
               for i in range(2)]
    assert {"crs", "bounds"}.isdisjoint(samples[0])
    assert default_collate(samples)["image"].shape == (2, 6, 8, 8)
    _rewrite_table(folder, crs="EPSG:32618", bounds="1,2,3")
    with pytest.raises(InputError, match=r"patches\.csv: patch L8_r00000_c00000: crs "
                       r"'EPSG:32618' and bounds '1,2,3' are not"):
        PatchDataset(folder, "Train", quality=QualityFilter(0.0, -1.0))


def test_random_dihedral_draws_as_the_augment_flag_did() -> None:
    sample = {"image": torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(2, 4, 4),
              "crs": "EPSG:32618", "bounds": (0.0, 0.0, 120.0, 120.0)}
    sample["pan"] = torch.kron(sample["image"][:1], torch.ones(2, 2))
    sample["target"] = torch.kron(sample["image"], torch.ones(3, 3))
    transform = RandomDihedral()
    draws = set()
    for seed in range(12):
        torch.manual_seed(seed)
        rotations, flip = int(torch.randint(4, ())), bool(torch.randint(2, ()))
        draws.add((rotations, flip))
        torch.manual_seed(seed)
        out = transform(sample)
        for key in ("image", "pan", "target"):
            assert torch.equal(out[key], dihedral(sample[key], rotations, flip))
        assert torch.equal(out["pan"], torch.kron(out["image"][:1].contiguous(), torch.ones(2, 2)))
        assert (out["crs"], out["bounds"]) == (sample["crs"], sample["bounds"])
    assert len(draws) > 4  # the draws vary
    rng, same = np.random.default_rng(5), np.random.default_rng(5)
    assert transform.draw(rng) == (int(same.integers(4)), bool(same.integers(2)))
    assert set(RandomDihedral(("image",))(sample)) == set(sample)


def test_dihedral_still_importable_from_patches() -> None:
    assert patches.dihedral is transforms.dihedral


def test_pair_dataset_writes_table_parts_then_the_table(tmp_path: Path, monkeypatch) -> None:
    """build_pair_dataset without a catalogue: each pair's table part, then patches.csv with
    every part's rows and the counts passing quality; a cloudy patch is left out."""
    import datetime as dt
    from types import SimpleNamespace

    from s2l8h.data import build, stac

    multispectral, pan, target = _scene_arrays()
    qa_pixel = np.full(GRID30.shape, 21824, np.uint16)
    qa_pixel[0, 0] = 22280  # one cloudy 30 m pixel: the Train patch at (0, 0) is not clear
    grid10 = GeoBox((120, 72), Affine(10, 0, 600000.0, 0, -10, 4200000.0), "EPSG:32618")

    def load_pair(pair: SimpleNamespace, *args: object, **kwargs: object) -> stac.LoadedPair:
        return stac.LoadedPair(target, np.full(grid10.shape, 4, np.uint8), grid10,
                               multispectral, qa_pixel, GRID30, pan[0], GRID30, 0.0)

    monkeypatch.setattr(stac, "load_pair", load_pair)
    pairs = [SimpleNamespace(landsat=SimpleNamespace(id=f"L8_{n}", datetime=dt.datetime(
        2023, 6, n)), sentinel2=SimpleNamespace(id=f"S2_{n}")) for n in (1, 2)]
    counts = build.build_pair_dataset(pairs, (0.0, 0.0, 1.0, 1.0), tmp_path, size=8, stride=4,
                                      fractions=(0.5, 0.25, 0.25), progress=False,
                                      quality=QualityFilter(0.0, -1.0))
    rows = read_table(tmp_path)
    per_pair = len(GridSampler({"Train": (0, 20), "Validation": (20, 30),
                                "Test": (30, 40)}, 24, size=8, stride=4)) - 1
    assert len(rows) == 2 * per_pair and "L8_1_r00000_c00000" not in \
        {row["patch_id"] for row in rows}
    assert sorted(path.name for path in (tmp_path / "tables").iterdir()) == [
        "L8_1__S2_1.csv", "L8_2__S2_2.csv"]
    assert counts == {"Train": 2 * 19, "Validation": 2 * 5, "Test": 2 * 5}
    assert {row["date"] for row in rows} == {"2023-06-01", "2023-06-02"}


def test_a_pan_without_data_makes_its_patch_invalid() -> None:
    """The valid fraction counts the pan too: a patch whose first pan row is NaN (as a
    simulation leaves along a scene edge) is not whole, and gets no quality figures."""
    from s2l8h.data.patches import cut_patch

    multispectral, pan, target = _scene_arrays()
    pan[:, 0] = np.nan
    row, *_ = cut_patch(Window("Train", 0, 0, 8), multispectral, pan, target, GRID30)
    assert row["valid_fraction"] == pytest.approx(7 / 8)  # one 30 m row of eight
    assert (row["ssim"], row["psnr"]) == (0.0, 0.0)
    whole, *_ = cut_patch(Window("Train", 4, 0, 8), multispectral, pan, target, GRID30)
    assert whole["valid_fraction"] == 1.0 and whole["ssim"] > 0.9
