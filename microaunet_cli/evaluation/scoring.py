"""Scoring one split of images against its ground truth, at original resolution (docs/ARCHITECTURE.md,
"Metrics").

The network runs at its training size; each probability map is resized bilinearly to its mask's own
size and thresholded at 0.5, by the same function ``predict`` uses (``inference.resize.mask_at_size``),
so evaluate's masks are predict's masks. The same forward pass also gives the score against the
resized square masks, kept and labelled as such: it is biased upward (a perfect 128-px prediction
scores about 0.989 mDice on the Kvasir test masks).

A prepared folder from before original masks were kept, or a checkpoint scored on data of another
size, is handled here too: the first scores at the resized resolution with a warning, the second
resizes the images to the network's size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from microaunet_cli.data.decode import resample, resize_mask
from microaunet_cli.data.original_masks import OriginalMasks
from microaunet_cli.evaluation.metrics import SegmentationMetrics
from microaunet_cli.inference.resize import THRESHOLD, mask_at_size, to_original_size
from microaunet_cli.inference.runners import Predictor, TorchRunner
from microaunet_cli.overlays import draw_overlay, write_png

log = logging.getLogger(__name__)

CASE_COLUMNS = ("split", "index", "name", "dice", "iou", "mae", "gt_pixels", "pred_pixels", "height", "width")
ORIGINAL = "original"
# Per-case test scores a training run leaves in its folder, read by `microaunet report`.
TEST_CASES = "test_per_case.csv"
NO_ORIGINALS_WARNING = (
    "{root} was prepared before original masks were kept: {split} is scored against the "
    "resized {size}x{size} masks, which biases scores upward. Run `microaunet prepare-data "
    "... --force` on it to score at original resolution."
)


def resized_label(size: int) -> str:
    return f"resized {size}x{size} (biased upward against the original masks)"


@dataclass
class SplitData:
    """What scoring needs of a split: images at any common size, masks at that size, names, and the
    original masks (None for folders prepared before they were kept)."""

    images: Any
    masks: Any
    names: list[str]
    originals: OriginalMasks | None

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class SplitScores:
    """Both resolutions' metrics of a split (``original`` None when there are no original masks)."""

    resized: SegmentationMetrics
    original: SegmentationMetrics | None
    shapes: list[tuple[int, int]]


def network_input(runner: Predictor, images: np.ndarray) -> np.ndarray:
    """Images at the network's size: prepared arrays of another size are resampled as predict would."""
    h, w = runner.input_size
    if images.shape[1:3] == (h, w):
        return images
    return np.stack([resample(image, h, w) for image in images])


def score_split(runner: Predictor, split: SplitData, batch_size: int) -> SplitScores:
    """One forward pass per batch; metrics against the resized masks and, where kept, the originals."""
    resized = SegmentationMetrics(THRESHOLD)
    original = SegmentationMetrics(THRESHOLD) if split.originals is not None else None
    shapes: list[tuple[int, int]] = []
    h, w = runner.input_size
    for start in range(0, len(split), batch_size):
        stop = min(start + batch_size, len(split))
        probs = runner.probs(network_input(runner, np.asarray(split.images[start:stop])))
        masks = [
            resize_mask(np.asarray(m), h) if m.shape != (h, w) else np.asarray(m)
            for m in split.masks[start:stop]
        ]
        # In split order, so each metric's running count is the image's index in the split.
        resized.update(torch.from_numpy(probs), torch.from_numpy(np.stack(masks)))
        for i, prob in zip(range(start, stop), probs):
            if original is None:
                shapes.append((h, w))
                continue
            gt = split.originals[i]
            full = to_original_size(prob, *gt.shape)  # thresholded at THRESHOLD by the metrics
            original.update(torch.from_numpy(full)[None], torch.from_numpy(gt)[None])
            shapes.append(gt.shape)
    return SplitScores(resized, original, shapes)


def case_rows(name: str, split: SplitData, scores: SplitScores) -> list[dict[str, Any]]:
    """Per-image rows at the headline resolution (original where kept)."""
    metrics = scores.original if scores.original is not None else scores.resized
    return [
        {
            "split": name,
            "name": split.names[r["index"]],
            **r,
            "height": scores.shapes[r["index"]][0],
            "width": scores.shapes[r["index"]][1],
        }
        for r in metrics.per_case()
    ]


def summarize_split(scores: SplitScores, size: int) -> dict[str, Any]:
    """Headline metrics labelled with their resolution; the resized ones kept under ``resized``."""
    resized = {"resolution": resized_label(size), **scores.resized.compute()}
    if scores.original is None:
        return resized
    return {"resolution": ORIGINAL, **scores.original.compute(), "resized": resized}


def worst_cases(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The ``k`` lowest-Dice rows (ties: lower IoU, then split order)."""
    return sorted(rows, key=lambda r: (r["dice"], r["iou"], r["index"]))[:k]


def write_worst_overlays(
    runner: Predictor, split: SplitData, worst: list[dict[str, Any]], folder: Path
) -> None:
    """Re-run the worst cases (cheaper than keeping every probability map) and draw them where they were
    scored: at the original mask's size when the split keeps it (the image, kept only at the network's
    size, enlarged bilinearly to it), else at the images' size; the prediction resized as predict
    resizes it. Captions give the scored Dice."""
    # A rerun with a smaller --worst must not leave the previous run's extra overlays looking current.
    for stale in folder.glob("[0-9][0-9]_*.png"):
        stale.unlink()
    if not worst:
        return
    images = np.stack([np.asarray(split.images[r["index"]]) for r in worst])
    probs = runner.probs(network_input(runner, images))
    for rank, (row, image, prob) in enumerate(zip(worst, images, probs), start=1):
        caption = f"#{rank} {row['name']}  Dice {row['dice']:.3f}  IoU {row['iou']:.3f}"
        if split.originals is not None:
            gt = split.originals[row["index"]]
            image = cv2.resize(image, gt.shape[::-1], interpolation=cv2.INTER_LINEAR)
            caption += f"  at {gt.shape[1]}x{gt.shape[0]}"
        else:
            gt = np.asarray(split.masks[row["index"]])
        _, pred = mask_at_size(prob, *image.shape[:2], runner.threshold)
        overlay = draw_overlay(image, pred, gt, caption)
        write_png(folder / f"{rank:02d}_{Path(row['name']).stem}.png", overlay)


def evaluate_split(
    runner: Predictor,
    split: SplitData,
    name: str,
    size: int,
    batch_size: int,
    worst_k: int,
    overlays: Path | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Summary and per-case rows of one split; overlays of its worst cases under ``overlays/<name>``."""
    scores = score_split(runner, split, batch_size)
    rows = case_rows(name, split, scores)
    worst = worst_cases(rows, worst_k)
    if overlays is not None:
        write_worst_overlays(runner, split, worst, overlays / name)
    summary = {**summarize_split(scores, size), "worst": [r["name"] for r in worst]}
    log.info(
        "%s: %d images, mDice %.4f (per image), Dice %.4f (pooled), at %s resolution",
        name,
        summary["n_images"],
        summary["per_image"]["mdice"],
        summary["pooled"]["dice"],
        "original" if scores.original is not None else f"the resized {size}x{size}",
    )
    return summary, rows


def score_test_splits(
    model: torch.nn.Module,
    data: Any,
    mean: list[float],
    std: list[float],
    device: torch.device,
    batch_size: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Test scores of a trained network on every test split of a prepared folder, as `evaluate` computes
    them (original resolution where the folder keeps the masks), and the per-case rows."""
    model.eval()
    runner = TorchRunner(
        model, device, list(mean), list(std), (data.size, data.size), THRESHOLD, "training run"
    )
    results: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for name in data.test_splits:
        arrays = data.load(name)
        if not len(arrays):
            continue
        split = SplitData(arrays.images, arrays.masks, list(arrays.names), data.original_masks(name))
        if split.originals is None:
            log.warning(NO_ORIGINALS_WARNING.format(root=data.root, split=name, size=data.size))
        results[name], split_rows = evaluate_split(runner, split, name, data.size, batch_size, 0, None)
        rows += split_rows
    return results, rows
