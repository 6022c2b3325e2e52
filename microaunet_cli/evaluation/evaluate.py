"""Evaluate a checkpoint on a prepared split: metrics in both conventions, per-case rows, overlays.

Only the checkpoint is needed: it carries the network, its settings (hence the prepared data
folder), the input size and the normalisation statistics the network was trained with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from microaunet_cli import data
from microaunet_cli.errors import DataError
from microaunet_cli.evaluation.metrics import SegmentationMetrics, binarize
from microaunet_cli.evaluation.overlays import draw_overlay, write_png
from microaunet_cli.evaluation.reports import write_csv
from microaunet_cli.fileio import write_json_atomic
from microaunet_cli.inference.batched import iter_probs, predict_probs
from microaunet_cli.inference.preprocess import IMAGENET_MEAN, IMAGENET_STD
from microaunet_cli.training.checkpoint import model_from_checkpoint
from microaunet_cli.training.runtime import pick_device

log = logging.getLogger(__name__)

THRESHOLD = 0.5  # SPEC section 3
CASE_COLUMNS = ("split", "index", "name", "dice", "iou", "mae", "gt_pixels", "pred_pixels")
CONVENTIONS = {
    "per_image": "PraNet convention (headline): Dice, IoU and MAE per image, then the mean; "
                 "an image with empty prediction and empty ground truth scores 1",
    "pooled": "MALUNet convention: one confusion matrix over every pixel of the split",
}


def run_folder(ckpt: Path) -> Path:
    """``runs/<name>/checkpoints/best.pt`` -> ``runs/<name>``; a checkpoint elsewhere -> its folder."""
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def default_out_dir(ckpt: Path, split: str) -> Path:
    return run_folder(ckpt) / f"eval-{split}"


def find_prepared(settings_dir: Path, ckpt: Path) -> Path:
    """The checkpoint's prepared folder. A relative path was relative to where training ran, which is
    usually the folder holding ``runs/``; evaluation may run elsewhere, so look there too."""
    if settings_dir.is_absolute() or settings_dir.is_dir():
        return settings_dir
    beside_runs = run_folder(ckpt).parent.parent / settings_dir
    if beside_runs.is_dir():
        log.info("prepared data %s found beside the run folder: %s", settings_dir, beside_runs)
        return beside_runs
    return settings_dir


def _open(data_dir: Path, explicit: bool) -> Any:
    try:
        return data.open_prepared(data_dir)
    except DataError as exc:
        if explicit:
            raise
        raise DataError(f"{exc}\nThe checkpoint was trained on {data_dir}; if the prepared data is elsewhere, "
                        f"pass --data-dir.") from None


def splits_to_evaluate(available: list[str], test_splits: list[str], split: str) -> list[str]:
    """``test`` means every test split (polyp-mix has one per source); any other name itself."""
    if split == "test" and split not in available and test_splits:
        return list(test_splits)
    if split not in available:
        raise DataError(f"the prepared data has no split {split!r}; choose one of: {', '.join(available)}")
    return [split]


@dataclass
class Evaluator:
    """A loaded network and how to run it: what every split's evaluation shares."""

    model: nn.Module
    mean: list[float]
    std: list[float]
    device: torch.device
    batch_size: int

    def score(self, images: Any, masks: Any) -> SegmentationMetrics:
        """Stream a split through the network, keeping only per-image statistics."""
        metrics = SegmentationMetrics(THRESHOLD)
        for start, probs in iter_probs(self.model, images, self.mean, self.std, self.device, self.batch_size):
            stop = start + probs.shape[0]
            gt = torch.as_tensor(np.asarray(masks[start:stop])).to(self.device)
            metrics.update(probs[:, 0], gt, torch.arange(start, stop, device=self.device))
        return metrics

    def masks_of(self, images: np.ndarray) -> np.ndarray:
        """Thresholded predictions of a few images (``K×H×W`` bool)."""
        probs = predict_probs(self.model, images, self.mean, self.std, self.device, self.batch_size)
        return binarize(probs[:, 0], THRESHOLD).cpu().numpy()


def worst_cases(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The ``k`` lowest-Dice rows (ties: lower IoU, then split order)."""
    return sorted(rows, key=lambda r: (r["dice"], r["iou"], r["index"]))[:k]


def write_worst_overlays(ev: Evaluator, arrays: Any, worst: list[dict[str, Any]], folder: Path) -> None:
    """Re-run the worst cases (cheaper than keeping every probability map) and draw them."""
    # A rerun with a smaller --worst must not leave the previous run's extra overlays looking current.
    for stale in folder.glob("[0-9][0-9]_*.png"):
        stale.unlink()
    if not worst:
        return
    images = [np.asarray(arrays.images[r["index"]]) for r in worst]
    for rank, (row, image, pred) in enumerate(zip(worst, images, ev.masks_of(np.stack(images))), start=1):
        caption = f"#{rank} {row['name']}  Dice {row['dice']:.3f}  IoU {row['iou']:.3f}"
        overlay = draw_overlay(image, pred, np.asarray(arrays.masks[row["index"]]), caption)
        write_png(folder / f"{rank:02d}_{Path(row['name']).stem}.png", overlay)


def _normalization(meta: dict, prepared: Any, ckpt: Path) -> tuple[list[float], list[float]]:
    norm = meta.get("normalization") or {}
    if norm.get("mean") is not None and norm.get("std") is not None:
        return list(norm["mean"]), list(norm["std"])
    log.warning("%s records no normalisation statistics; using the prepared data's", ckpt)
    return list(getattr(prepared, "mean", None) or IMAGENET_MEAN), list(getattr(prepared, "std", None) or IMAGENET_STD)


def evaluate_split(ev: Evaluator, arrays: Any, split: str, worst_k: int, out: Path) -> tuple[dict, list[dict]]:
    """Summary and per-case rows of one split; overlays of its worst cases under ``out/overlays/<split>``."""
    metrics = ev.score(arrays.images, arrays.masks)
    rows = [{"split": split, "name": arrays.names[r["index"]], **r} for r in metrics.per_case()]
    worst = worst_cases(rows, worst_k)
    write_worst_overlays(ev, arrays, worst, out / "overlays" / split)
    summary = {**metrics.compute(), "worst": [r["name"] for r in worst]}
    log.info("%s: %d images, mDice %.4f (per image), Dice %.4f (pooled)", split, summary["n_images"],
             summary["per_image"]["mdice"], summary["pooled"]["dice"])
    return summary, rows


def evaluate_checkpoint(
    ckpt: str | Path,
    split: str = "test",
    data_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 32,
    worst: int = 8,
) -> dict[str, Any]:
    """Score ``ckpt`` on ``split``; write summary.json, per_case.csv and worst-case overlays.

    Returns the summary (also written to ``<out_dir>/summary.json``).
    """
    ckpt = Path(ckpt)
    dev = pick_device(device)
    model, settings, meta = model_from_checkpoint(ckpt, dev)
    explicit = data_dir is not None
    data_dir = Path(data_dir) if explicit else find_prepared(settings.data.resolved_dir(), ckpt)
    prepared = _open(data_dir, explicit)
    if meta.get("size") and prepared.size != meta["size"]:
        log.warning("checkpoint was trained at %s px, the prepared data is %s px", meta["size"], prepared.size)
    out = Path(out_dir) if out_dir is not None else default_out_dir(ckpt, split)
    ev = Evaluator(model, *_normalization(meta, prepared, ckpt), dev, batch_size)
    results, rows = {}, []
    for name in splits_to_evaluate(list(prepared.splits), list(prepared.test_splits), split):
        # k-fold data: the checkpoint's fold decides which block is "val".
        arrays = prepared.load(name, fold=settings.data.fold)
        results[name], split_rows = evaluate_split(ev, arrays, name, worst, out)
        rows += split_rows
    summary = {
        "checkpoint": str(ckpt), "model": settings.model.name, "kind": meta.get("kind"),
        "epoch": meta.get("epoch"), "dataset": meta.get("dataset"), "data_dir": str(data_dir),
        "size": prepared.size, "threshold": THRESHOLD, "device": str(dev), "out_dir": str(out),
        "conventions": CONVENTIONS, "splits": results,
    }
    write_csv(out / "per_case.csv", rows, CASE_COLUMNS)
    write_json_atomic(out / "summary.json", summary)
    return summary
