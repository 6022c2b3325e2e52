"""Test scores against each ground truth at its own resolution (SPEC section 3, issue 11).

Images of several non-square sizes are prepared at 64 px; scoring resizes the network's
probabilities to each original mask, through the same function as ``predict``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_fixtures import write_image, write_mask
from helpers import make_checkpoint
from oracles import bilinear_resize

from microaunet_cli.data import PrepareSettings, open_prepared, prepare_dataset
from microaunet_cli.data.manifest import MANIFEST
from microaunet_cli.evaluation.evaluate import evaluate_checkpoint
from microaunet_cli.evaluation.scoring import SplitData, evaluate_split
from microaunet_cli.inference.predict import predict

SIZE = 64
# (width, height): landscape, portrait, odd sizes, one smaller than the network's input.
SIZES = ((100, 60), (75, 130), (333, 250), (48, 40), (160, 90))


def _small_mask(seed: int) -> np.ndarray:
    """A 64-px {0,1} prediction: an ellipse somewhere in the frame."""
    rng = np.random.default_rng(seed)
    small = np.zeros((SIZE, SIZE), np.uint8)
    centre = tuple(int(v) for v in rng.integers(16, 48, 2))
    axes = tuple(int(v) for v in rng.integers(6, 16, 2))
    cv2.ellipse(small, centre, axes, 0, 0, 360, 1, -1)
    return small


def _image(mask: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.full((*mask.shape, 3), (200, 120, 110), np.uint8) + rng.integers(
        0, 30, (*mask.shape, 3), dtype=np.uint8
    )
    image[mask == 1] = (170, 40, 40)
    return image


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """Kvasir-like folder whose ground truths are a 64-px mask resized bilinearly (half-pixel centres)
    and thresholded at 0.5, by the hand-written reference in tests/oracles.py: a network that predicts the
    64-px mask is perfect at original resolution only if evaluation resizes probabilities by that rule."""
    root = tmp_path_factory.mktemp("src") / "kvasir"
    small = {}
    for i in range(20):
        width, height = SIZES[i % len(SIZES)]
        name = f"case{i:02d}"
        small[name] = _small_mask(i)
        gt = (bilinear_resize(small[name], height, width) > 0.5).astype(np.uint8)
        write_image(root / "images" / f"{name}.jpg", _image(gt, i))
        write_mask(root / "masks" / f"{name}.png", gt)
    return root, small


@pytest.fixture(scope="module")
def prepared(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prep") / "kvasir"
    prepare_dataset(
        PrepareSettings(
            dataset="kvasir", src=source[0], out=out, size=SIZE, split="random", test_fraction=0.5, workers=1
        )
    )
    return out


class OracleRunner:
    """Predicts the known 64-px masks, in split order (the Predictor protocol of inference.runners)."""

    input_size = (SIZE, SIZE)
    threshold = 0.5
    description = "oracle"

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.queue = list(masks)

    def probs(self, images: np.ndarray) -> np.ndarray:
        out, self.queue = self.queue[: len(images)], self.queue[len(images) :]
        return np.stack(out).astype(np.float32)


def test_perfect_prediction_scores_exactly_one_at_original_resolution(source, prepared):
    data = open_prepared(prepared)
    test = data.load("test")
    originals = data.original_masks("test")
    shapes = {originals.shape(i) for i in range(len(originals))}
    assert len(shapes) >= 4 and all(h != w for h, w in shapes)  # several non-square sizes
    split = SplitData(test.images, test.masks, test.names, originals)
    oracle = OracleRunner([source[1][n] for n in test.names])
    summary, rows = evaluate_split(oracle, split, "test", SIZE, batch_size=3, worst_k=0, overlays=None)
    assert summary["resolution"] == "original"
    assert summary["per_image"]["mdice"] == 1.0 and summary["per_image"]["miou"] == 1.0
    assert summary["pooled"]["dice"] == 1.0
    assert {(r["height"], r["width"]) for r in rows} == shapes
    # Against the masks resized to 64 px the same prediction is not perfect: why the headline is original.
    assert summary["resized"]["per_image"]["mdice"] < 1.0


def test_worst_case_overlays_are_drawn_where_they_were_scored(source, prepared, tmp_path):
    """At each original mask's size, not the network's: a 64-px overlay would show another outline than
    the one scored."""
    data = open_prepared(prepared)
    test = data.load("test")
    originals = data.original_masks("test")
    split = SplitData(test.images, test.masks, test.names, originals)
    by_image = {test.images[i].tobytes(): source[1][n] for i, n in enumerate(test.names)}

    class Oracle(OracleRunner):  # asked twice (scores, then the worst cases): answers by image
        def probs(self, images: np.ndarray) -> np.ndarray:
            return np.stack([by_image[im.tobytes()] for im in images]).astype(np.float32)

    evaluate_split(Oracle([]), split, "test", SIZE, batch_size=len(test), worst_k=3, overlays=tmp_path)
    drawn = sorted((tmp_path / "test").glob("*.png"))
    assert len(drawn) == 3
    for path in drawn:
        i = list(test.names).index(path.stem.split("_", 1)[1])
        height, width = originals.shape(i)
        factor = max(1, -(-320 // width))  # overlays enlarge small pictures to 320 px wide
        picture = cv2.imread(str(path))
        assert picture.shape[1] == width * factor and picture.shape[0] > height * factor


def test_original_masks_are_kept_compact_and_hashed(source, prepared):
    manifest = json.loads((prepared / MANIFEST).read_text())
    entry = manifest["splits"]["test"]["original_masks"]
    assert len(entry["data"]["sha256"]) == 64 and entry["index"]["shape"][1] == 4
    data = open_prepared(prepared)
    names = data.load("test").names
    originals = data.original_masks("test")
    for i, name in enumerate(names):
        truth = cv2.imread(str(source[0] / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) >= 128
        assert np.array_equal(originals[i], truth.astype(np.uint8)), name
    assert (prepared / entry["data"]["file"]).stat().st_size < sum(
        m.size for m in map(originals.__getitem__, range(len(names)))
    ) / 8


def _dice(pred: np.ndarray, gt: np.ndarray) -> float:
    total = pred.sum() + gt.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(pred, gt).sum() / total


def test_evaluate_agrees_with_predict_masks(source, prepared, tmp_path):
    """mDice from `evaluate` against an independent computation on the masks `predict` writes."""
    ckpt = make_checkpoint(
        tmp_path / "run" / "checkpoints" / "best.pt", size=SIZE, dataset="kvasir", prepared_dir=prepared
    )
    summary = evaluate_checkpoint(ckpt, device="cpu", worst=2, batch_size=4)
    names = open_prepared(prepared).load("test").names
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in names:
        (inputs / f"{name}.jpg").write_bytes((source[0] / "images" / f"{name}.jpg").read_bytes())
    predict(inputs, tmp_path / "pred", ckpt=ckpt, device="cpu", batch_size=3)
    scores, predicted = [], []
    for name in names:
        pred = cv2.imread(str(tmp_path / "pred" / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 127
        gt = cv2.imread(str(source[0] / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) >= 128
        assert pred.shape == gt.shape
        scores.append(_dice(pred, gt))
        predicted.append(pred.mean())
    assert 0.02 < float(np.mean(predicted)) < 0.98  # the untrained network predicts something to compare
    assert summary.splits["test"]["resolution"] == "original"
    assert summary.splits["test"]["per_image"]["mdice"] == pytest.approx(float(np.mean(scores)), abs=1e-3)


def test_folder_without_original_masks_scores_resized_with_a_warning(prepared, tmp_path, caplog):
    old = tmp_path / "old"
    old.mkdir()
    for split in ("train", "val", "test"):
        if (prepared / split).is_dir():
            (old / split).mkdir()
            for name in ("images.npy", "masks.npy", "names.txt"):
                (old / split / name).write_bytes((prepared / split / name).read_bytes())
    manifest = json.loads((prepared / MANIFEST).read_text())
    for entry in manifest["splits"].values():
        del entry["original_masks"]  # as written before original masks were kept
    (old / MANIFEST).write_text(json.dumps(manifest))
    ckpt = make_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", size=SIZE, dataset="kvasir")
    with caplog.at_level(logging.WARNING):
        summary = evaluate_checkpoint(ckpt, data_dir=old, device="cpu", worst=0)
    assert summary.splits["test"]["resolution"].startswith("resized 64x64")
    assert "resized" not in summary.splits["test"]
    assert "prepared before original masks were kept" in caplog.text
