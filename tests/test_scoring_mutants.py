"""Scoring a split (evaluation/scoring.py) with a stand-in network whose probability maps are chosen
here: each image's Dice at its original size is worked out from the hand-written bilinear reference
(tests/oracles.py) and counted by hand, the resized scores from the masks resized here."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from oracles import bilinear_resize

from microaunet_cli.data.decode import resize_mask
from microaunet_cli.evaluation.scoring import (
    ORIGINAL,
    SplitData,
    case_rows,
    evaluate_split,
    network_input,
    resized_label,
    score_split,
    summarize_split,
    worst_cases,
    write_worst_overlays,
)

SIZE = 4


class Runner:
    """Answers each image with the probability map filed under its first pixel's value."""

    input_size = (SIZE, SIZE)
    description = "stand-in"

    def __init__(self, maps: dict[int, np.ndarray], threshold: float = 0.5) -> None:
        self.maps, self.threshold, self.calls = maps, threshold, []

    def probs(self, images: np.ndarray) -> np.ndarray:
        self.calls.append(images.shape)
        return np.stack([self.maps[int(im[0, 0, 0])] for im in images]).astype(np.float32)


def _image(key: int, size: int = SIZE) -> np.ndarray:
    image = np.zeros((size, size, 3), np.uint8)
    image[0, 0, 0] = key
    return image


def _dice(pred: np.ndarray, gt: np.ndarray) -> float:
    total = pred.sum() + gt.sum()
    return 1.0 if total == 0 else 2 * np.logical_and(pred, gt).sum() / total


MAPS = {
    1: np.array([[0.9, 0.9, 0.1, 0.1]] * 2 + [[0.1] * 4] * 2),  # top-left half of the top rows
    2: np.full((SIZE, SIZE), 0.1),  # predicts nothing
    3: np.array([[0.2, 0.4, 0.6, 0.8]] * 4),  # a ramp: where 0.5 falls depends on the resizing
}


def _split(with_originals: bool = True) -> tuple[SplitData, list[np.ndarray]]:
    originals = [np.zeros((6, 10), np.uint8), np.zeros((3, 5), np.uint8), np.zeros((8, 6), np.uint8)]
    originals[0][:3, :4] = 1
    originals[1][1, 1] = 1
    originals[2][:, 2:] = 1
    masks = [resize_mask(m, SIZE) if m.shape[0] == m.shape[1] else _square(m) for m in originals]
    images = np.stack([_image(k) for k in (1, 2, 3)])
    return SplitData(
        images, masks, ["a.png", "b.png", "c.png"], originals if with_originals else None
    ), originals


def _square(mask: np.ndarray) -> np.ndarray:
    """The mask at SIZE×SIZE as prepare-data keeps it (area / linear as 0-255, threshold 128)."""
    import cv2

    shrink = mask.size >= SIZE * SIZE
    scaled = cv2.resize(
        mask * np.uint8(255), (SIZE, SIZE), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
    return (scaled >= 128).astype(np.uint8)


def _expected_original(originals) -> list[float]:
    return [
        _dice(bilinear_resize(MAPS[k], *gt.shape) > 0.5, gt.astype(bool))
        for k, gt in zip((1, 2, 3), originals)
    ]


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_scores_at_original_resolution_image_by_image(batch_size):
    split, originals = _split()
    scores = score_split(Runner(MAPS), split, batch_size)
    want = _expected_original(originals)
    assert want[1] == 0.0 and 0 < want[0] < 1 and 0 < want[2] < 1  # the cases differ
    rows = scores.original.per_case()
    assert [r["dice"] for r in rows] == pytest.approx(want)
    assert [r["gt_pixels"] for r in rows] == [int(m.sum()) for m in originals]
    assert scores.shapes == [(6, 10), (3, 5), (8, 6)]
    resized = scores.resized.per_case()
    assert [r["dice"] for r in resized] == pytest.approx(
        [_dice(MAPS[k] > 0.5, m.astype(bool)) for k, m in zip((1, 2, 3), split.masks)]
    )


def test_without_original_masks_the_resized_scores_are_the_headline():
    split, _ = _split(with_originals=False)
    scores = score_split(Runner(MAPS), split, 2)
    assert scores.original is None and scores.shapes == [(SIZE, SIZE)] * 3
    summary = summarize_split(scores, SIZE)
    assert (
        summary["resolution"]
        == resized_label(SIZE)
        == "resized 4x4 (biased upward against the original masks)"
    )
    assert "resized" not in summary
    rows = case_rows("test", split, scores)
    assert [(r["height"], r["width"]) for r in rows] == [(SIZE, SIZE)] * 3


def test_masks_of_another_size_are_brought_to_the_network_size():
    split, _ = _split(with_originals=False)
    big = SplitData(
        split.images, [np.kron(m, np.ones((2, 2), np.uint8)) for m in split.masks], split.names, None
    )
    a = score_split(Runner(MAPS), split, 3).resized.per_case()
    b = score_split(Runner(MAPS), big, 3).resized.per_case()
    assert [r["dice"] for r in a] == [r["dice"] for r in b]


def test_summary_and_rows_with_original_masks():
    split, originals = _split()
    scores = score_split(Runner(MAPS), split, 2)
    summary = summarize_split(scores, SIZE)
    assert summary["resolution"] == ORIGINAL == "original"
    assert summary["per_image"]["mdice"] == pytest.approx(np.mean(_expected_original(originals)))
    assert summary["resized"]["resolution"] == resized_label(SIZE)
    assert summary["resized"]["n_images"] == 3
    rows = case_rows("test", split, scores)
    assert [(r["split"], r["index"], r["name"], r["height"], r["width"]) for r in rows] == [
        ("test", 0, "a.png", 6, 10),
        ("test", 1, "b.png", 3, 5),
        ("test", 2, "c.png", 8, 6),
    ]


def test_network_input_resamples_only_other_sizes():
    images = np.stack([_image(1), _image(2)])
    assert network_input(Runner(MAPS), images) is images
    big = np.zeros((2, 8, 8, 3), np.uint8)
    big[:, :4, :4] = 200  # the top-left quarter: one pixel of the 4×4 result's 2×2 quarter... all of it
    out = network_input(Runner(MAPS), big)
    assert out.shape == (2, SIZE, SIZE, 3)
    assert out[0, :2, :2, 0].tolist() == [[200, 200], [200, 200]] and out[0, 2:, 2:, 0].max() == 0


def test_worst_cases_by_dice_then_iou_then_order():
    rows = [
        {"index": 0, "dice": 0.5, "iou": 0.4},
        {"index": 1, "dice": 0.2, "iou": 0.3},
        {"index": 2, "dice": 0.5, "iou": 0.1},
        {"index": 3, "dice": 0.2, "iou": 0.3},
    ]
    assert [r["index"] for r in worst_cases(rows, 3)] == [1, 3, 2]
    assert worst_cases(rows, 0) == []


def test_evaluate_split_names_its_worst_and_logs_the_headline(tmp_path, caplog):
    split, originals = _split()
    with caplog.at_level(logging.INFO):
        summary, rows = evaluate_split(Runner(MAPS), split, "test", SIZE, 2, 2, tmp_path)
    want = _expected_original(originals)
    order = sorted(range(3), key=lambda i: want[i])
    assert summary["worst"] == [split.names[i] for i in order[:2]]
    assert [p.name for p in sorted((tmp_path / "test").glob("*.png"))] == [
        f"{rank:02d}_{split.names[i][:-4]}.png" for rank, i in enumerate(order[:2], start=1)
    ]
    pooled = summary["pooled"]["dice"]
    headline = f"test: 3 images, mDice {np.mean(want):.4f} (per image), Dice {pooled:.4f} (pooled)"
    assert [r.getMessage() for r in caplog.records] == [headline + ", at original resolution"]
    assert [(r["split"], r["name"]) for r in rows] == [("test", n) for n in split.names]


def test_evaluate_split_without_originals_says_the_resized_size(caplog):
    split, _ = _split(with_originals=False)
    with caplog.at_level(logging.INFO):
        summary, rows = evaluate_split(Runner(MAPS), split, "val", SIZE, 3, 0, None)
    assert caplog.records[-1].getMessage().endswith(", at the resized 4x4 resolution")
    assert summary["worst"] == [] and [r["split"] for r in rows] == ["val"] * 3


def test_overlays_drop_stale_ones_and_draw_at_the_original_size(tmp_path):
    split, _ = _split()
    (tmp_path / "09_old.png").write_bytes(b"stale")
    (tmp_path / "notes.png").write_bytes(b"kept")
    runner = Runner(MAPS)
    write_worst_overlays(runner, split, [{"index": 2, "name": "c.png", "dice": 0.5, "iou": 0.25}], tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["01_c.png", "notes.png"]
    import cv2

    picture = cv2.imread(str(tmp_path / "01_c.png"))
    factor = max(1, -(-320 // 6))
    assert picture.shape[1] == 6 * factor
    write_worst_overlays(runner, split, [], tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["notes.png"]
    assert runner.calls == [(1, SIZE, SIZE, 3)]


def test_overlays_draw_the_scored_masks_with_their_size_in_the_caption(tmp_path, monkeypatch):
    from microaunet_cli.evaluation import scoring

    drawn = []
    monkeypatch.setattr(scoring, "draw_overlay", lambda *args: drawn.append(args) or args[0])
    row = {"index": 2, "name": "c.png", "dice": 0.5, "iou": 0.25}
    split, originals = _split()
    write_worst_overlays(Runner(MAPS), split, [row], tmp_path / "original")
    plain, _ = _split(with_originals=False)
    write_worst_overlays(Runner(MAPS), plain, [row], tmp_path / "resized")
    (image, pred, gt, caption), (image4, pred4, gt4, caption4) = drawn
    assert image.shape == (8, 6, 3) and np.array_equal(gt, originals[2])
    assert np.array_equal(pred, bilinear_resize(MAPS[3], 8, 6) > 0.5)
    assert caption == "#1 c.png  Dice 0.500  IoU 0.250  at 6x8"
    assert image4.shape == (SIZE, SIZE, 3) and np.array_equal(gt4, plain.masks[2])
    assert np.array_equal(pred4, MAPS[3] > 0.5) and caption4 == "#1 c.png  Dice 0.500  IoU 0.250"


class _KeyedNet(torch.nn.Module):
    """The network form of ``Runner``: logits of the map filed under the first pixel's value (inputs
    normalised with mean 0 and std 1/255, so that value comes back unchanged)."""

    def forward(self, x):
        maps = torch.tensor(np.stack([MAPS[round(float(v))] for v in x[:, 0, 0, 0]]), dtype=x.dtype)
        return torch.logit(maps, eps=1e-6)[:, None]


@dataclass
class _Arrays:
    images: np.ndarray
    masks: list
    names: list

    def __len__(self):
        return len(self.images)


class _Prepared:
    """A prepared folder's reading interface: three test splits, one empty, one without originals."""

    size, root, test_splits = SIZE, "data/x", ("test_a", "test_empty", "test_b")

    def __init__(self):
        self.split, self.originals = _split()

    def load(self, name):
        if name == "test_empty":
            return _Arrays(self.split.images[:0], [], [])
        return _Arrays(self.split.images, self.split.masks, self.split.names)

    def original_masks(self, name):
        return self.originals if name == "test_a" else None


def _close(a, b) -> bool:
    """Equal structures, floats within 1e-6 (the network's sigmoid against the maps' own values)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_close, a, b))
    if isinstance(a, float):
        return a == pytest.approx(b, abs=1e-6)
    return a == b


def test_score_test_splits_scores_every_test_split_as_evaluate_does(caplog):
    from microaunet_cli.evaluation.scoring import score_test_splits

    net, data = _KeyedNet().train(), _Prepared()
    with caplog.at_level(logging.INFO):
        results, rows = score_test_splits(net, data, [0.0] * 3, [1 / 255] * 3, torch.device("cpu"), 2)
    assert not net.training and list(results) == ["test_a", "test_b"]
    want_a, rows_a = evaluate_split(Runner(MAPS), data.split, "test_a", SIZE, 2, 0, None)
    plain, _ = _split(with_originals=False)
    want_b, rows_b = evaluate_split(Runner(MAPS), plain, "test_b", SIZE, 2, 0, None)
    assert _close(results["test_a"], want_a) and _close(results["test_b"], want_b)
    assert results["test_a"]["resolution"] == "original" and results["test_b"]["resolution"] != "original"
    assert _close(rows, rows_a + rows_b)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        (
            "data/x was prepared before original masks were kept: test_b is scored against the resized "
            "4x4 masks, which biases scores upward. Run `microaunet prepare-data ... --force` on it to "
            "score at original resolution."
        )
    ]
