"""``evaluate``: a checkpoint alone finds its data, scores it in both conventions and writes reports."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import NORMALIZATION, make_checkpoint
from typer.testing import CliRunner

import microaunet_cli.data as data_pkg
from microaunet_cli.checkpoints import load_trained
from microaunet_cli.cli.app import app
from microaunet_cli.errors import DataError
from microaunet_cli.evaluation.evaluate import (
    default_out_dir,
    evaluate_checkpoint,
    find_prepared,
    splits_to_evaluate,
)
from microaunet_cli.evaluation.metrics import SegmentationMetrics
from microaunet_cli.inference.batched import predict_probs

SIZE = 64


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory) -> Path:
    """A real prepared folder (prepare-data on 12 synthetic images at 64 px: under a second)."""
    from microaunet_cli.data import PrepareSettings, prepare_dataset

    out = tmp_path_factory.mktemp("project") / "data" / "synthetic"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=out, size=SIZE, synthetic_count=12, workers=1))
    return out


def _split(n: int, seed: int, prefix: str) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.zeros((n, SIZE, SIZE), np.uint8)
    for i in range(1, n):  # image 0 keeps an empty mask
        y, x = rng.integers(0, SIZE // 2, 2)
        masks[i, y : y + 20, x : x + 24] = 1
    return SimpleNamespace(images=images, masks=masks, names=[f"{prefix}{i}.jpg" for i in range(n)])


@dataclass
class FakePrepared:
    """Stands in for ``open_prepared``'s result (same attributes and ``load``)."""

    arrays: dict[str, SimpleNamespace]
    test_splits: list[str]
    size: int = SIZE
    # Deliberately not the checkpoint's statistics: evaluation must use the checkpoint's.
    mean: list[float] = field(default_factory=lambda: [0.1, 0.1, 0.1])
    std: list[float] = field(default_factory=lambda: [0.9, 0.9, 0.9])

    @property
    def splits(self) -> list[str]:
        return list(self.arrays)

    root: Path = Path("fake")

    def load(self, split: str, fold: int | None = None) -> SimpleNamespace:
        return self.arrays[split]

    def original_masks(self, split: str, fold: int | None = None) -> None:
        return None  # as a folder prepared before original masks were kept


@pytest.fixture
def prepared(monkeypatch, tmp_path):
    """A fake kvasir-like prepared set; records which folders were opened."""
    fake = FakePrepared(
        {"train": _split(4, 0, "tr"), "val": _split(3, 1, "va"), "test": _split(5, 2, "te")}, ["test"]
    )
    opened: list[Path] = []

    def open_prepared(path):
        opened.append(Path(path))
        return fake

    monkeypatch.setattr(data_pkg, "open_prepared", open_prepared, raising=False)
    return SimpleNamespace(fake=fake, opened=opened, dir=tmp_path / "prepared" / "kvasir")


def _run_ckpt(tmp_path: Path, prepared_dir: Path) -> Path:
    return make_checkpoint(tmp_path / "runs" / "kv" / "checkpoints" / "best.pt", prepared_dir=prepared_dir)


def test_evaluate_writes_reports_from_the_checkpoint_alone(prepared_dir, tmp_path):
    ckpt = _run_ckpt(tmp_path, prepared_dir)
    summary = evaluate_checkpoint(ckpt, worst=3, device="cpu", batch_size=2)

    test = data_pkg.open_prepared(prepared_dir).load("test")
    out = tmp_path / "runs" / "kv" / "eval-test"
    assert str(summary.data_dir) == str(prepared_dir)  # found through the checkpoint's settings
    assert json.loads((out / "summary.json").read_text())["splits"]["test"]["n_images"] == len(test)
    rows = list(csv.DictReader((out / "per_case.csv").open()))
    assert [r["name"] for r in rows] == list(test.names)
    assert set(rows[0]) >= {"split", "index", "dice", "iou", "mae", "gt_pixels", "pred_pixels"}
    overlays = sorted((out / "overlays" / "test").glob("*.png"))
    assert len(overlays) == min(3, len(test)) and overlays[0].name.startswith("01_")
    assert {"per_image", "pooled"} <= set(summary.conventions)

    # The resized-resolution scores, labelled, are a direct computation with the checkpoint's
    # normalisation (not the data's); the headline is at original resolution (test_original_resolution.py).
    model = load_trained(ckpt).network
    probs = predict_probs(model, test.images, NORMALIZATION["mean"], NORMALIZATION["std"], "cpu")
    ref = SegmentationMetrics()
    ref.update(probs, torch.from_numpy(np.asarray(test.masks)).unsqueeze(1))
    resized = summary.splits["test"]["resized"]
    assert summary.splits["test"]["resolution"] == "original" and resized["resolution"].startswith(
        "resized 64x64"
    )
    assert resized["per_image"] == pytest.approx(ref.compute()["per_image"])
    assert resized["pooled"] == pytest.approx(ref.compute()["pooled"])


def test_empty_ground_truth_cases_score_by_the_rule(prepared, tmp_path):
    """The fake set's image 0 has an empty mask. The rule (docs/evaluation.md): an empty prediction of
    an empty ground truth scores 1 (a network that predicts nothing, as here, gets it)."""
    ckpt = _run_ckpt(tmp_path, prepared.dir)
    state = torch.load(ckpt, weights_only=True)
    state["model"]["head.bias"].fill_(-1e4)  # every pixel background
    torch.save(state, ckpt)
    evaluate_checkpoint(ckpt, out_dir=tmp_path / "ev", worst=0, device="cpu")
    assert prepared.opened == [prepared.dir]
    first = next(csv.DictReader((tmp_path / "ev" / "per_case.csv").open()))
    assert (first["gt_pixels"], first["pred_pixels"], float(first["dice"]), float(first["iou"])) == (
        "0",
        "0",
        1.0,
        1.0,
    )


def test_test_means_every_test_split(prepared, tmp_path):
    fake = prepared.fake
    fake.arrays = {
        "train": fake.arrays["train"],
        "test_kvasir": _split(3, 5, "k"),
        "test_cvc": _split(2, 6, "c"),
    }
    fake.test_splits = ["test_kvasir", "test_cvc"]
    ckpt = _run_ckpt(tmp_path, prepared.dir)
    summary = evaluate_checkpoint(ckpt, out_dir=tmp_path / "ev", worst=1, device="cpu")
    assert list(summary.splits) == ["test_kvasir", "test_cvc"]
    rows = list(csv.DictReader((tmp_path / "ev" / "per_case.csv").open()))
    assert [r["split"] for r in rows] == ["test_kvasir"] * 3 + ["test_cvc"] * 2
    assert (tmp_path / "ev" / "overlays" / "test_cvc").is_dir()


def test_unknown_split_lists_the_choices():
    with pytest.raises(DataError, match="train, val"):
        splits_to_evaluate(["train", "val"], [], "tset")
    assert splits_to_evaluate(["train", "val", "test"], ["test"], "val") == ["val"]


def test_relative_data_dir_is_also_looked_up_beside_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "project" / "data" / "kvasir").mkdir(parents=True)
    ckpt = tmp_path / "project" / "runs" / "a" / "checkpoints" / "best.pt"
    assert find_prepared(Path("data/kvasir"), ckpt) == tmp_path / "project" / "data" / "kvasir"
    assert find_prepared(Path("data/cvc"), ckpt) == Path("data/cvc")  # not there either: unchanged


def test_default_out_dir_beside_the_run():
    assert default_out_dir(Path("runs/a/checkpoints/best.pt"), "val") == Path("runs/a/eval-val")
    assert default_out_dir(Path("models/teacher.pt"), "test") == Path("models/eval-test")


def test_cli_prints_both_conventions(prepared_dir, tmp_path):
    ckpt = _run_ckpt(tmp_path, prepared_dir)
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--ckpt",
            str(ckpt),
            "--split",
            "val",
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cpu",
            "--worst",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "PraNet" in result.output and "MALUNet" in result.output
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["splits"].keys() == {"val"}
    assert not list((tmp_path / "o").glob("overlays/val/*.png"))


def test_cli_missing_checkpoint_is_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "--ckpt", str(tmp_path / "nope.pt")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
