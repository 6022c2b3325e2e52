"""Segmentation metrics, reported in two conventions (docs/ARCHITECTURE.md, "Metrics").

* **per image, then mean** (PraNet, the headline): Dice, IoU and MAE are computed for every image and
  averaged, so a small polyp counts as much as a large one. An image where prediction and ground truth
  are both empty scores 1 (nothing to find, nothing found).
* **pooled** (MALUNet): one confusion matrix over every pixel of the split, then Dice (= F1),
  foreground IoU, accuracy, sensitivity and specificity. Large polyps dominate.

Everything is computed from small per-image statistics, never from stored maps, so the accumulator
costs a few numbers per image on any device and can be gathered across ranks cheaply.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from microaunet_cli.evaluation.gather import all_gather_rows, merge_gathered
from microaunet_cli.inference.resize import THRESHOLD

# Column order of the per-image count table.
TP, FP, FN, TN = 0, 1, 2, 3


def binarize(probs: Tensor, threshold: float = THRESHOLD) -> Tensor:
    """Foreground where the probability is above the threshold: strictly, as the export sidecar states
    (``mask = probability > threshold``), so evaluate, predict and exported models agree at exactly 0.5."""
    return probs > threshold


def _flat(x: Tensor) -> Tensor:
    """``B×1×H×W`` or ``B×H×W`` -> ``B×(H·W)``."""
    return x.reshape(x.shape[0], -1)


def confusion_per_image(probs: Tensor, masks: Tensor, threshold: float = THRESHOLD) -> Tensor:
    """``B×4`` int64 counts (tp, fp, fn, tn) per image; masks are {0, 1} in any dtype."""
    if probs.shape != masks.shape:
        raise ValueError(f"probabilities {tuple(probs.shape)} and masks {tuple(masks.shape)} differ in shape")
    pred = _flat(binarize(probs, threshold))
    gt = _flat(masks) > 0
    tp = (pred & gt).sum(1)
    fp = (pred & ~gt).sum(1)
    fn = (~pred & gt).sum(1)
    tn = pred.shape[1] - tp - fp - fn
    return torch.stack([tp, fp, fn, tn], dim=1).to(torch.int64)


def abs_error_per_image(probs: Tensor, masks: Tensor) -> Tensor:
    """Sum over pixels of ``|p - gt|`` per image (float32; MAE is this divided by the pixel count)."""
    return (_flat(probs).float() - (_flat(masks) > 0).float()).abs().sum(1)


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` with 0/0 = 1: an empty denominator means there was nothing to get wrong."""
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp_min(1), torch.ones_like(num))


def dice_iou(counts: Tensor) -> tuple[Tensor, Tensor]:
    """Dice and IoU of each row of ``…×4`` counts; both-empty rows score 1, false alarms on empty GT 0."""
    tp, fp, fn = counts[..., TP], counts[..., FP], counts[..., FN]
    return _ratio(2 * tp, 2 * tp + fp + fn), _ratio(tp, tp + fp + fn)


def pooled_scores(counts: Tensor) -> dict[str, float]:
    """MALUNet convention: sum the per-image confusion matrices, then score once."""
    total = counts.sum(0)
    tp, fp, fn, tn = (total[i] for i in (TP, FP, FN, TN))
    dice, iou = dice_iou(total)
    return {
        "dice": float(dice),
        "iou": float(iou),
        "accuracy": float(_ratio(tp + tn, total.sum())),
        "sensitivity": float(_ratio(tp, tp + fn)),
        "specificity": float(_ratio(tn, tn + fp)),
    }


def per_image_scores(counts: Tensor, abs_err: Tensor) -> dict[str, Tensor]:
    """Dice, IoU and MAE of every image (float64 tensors)."""
    dice, iou = dice_iou(counts)
    pixels = counts.sum(1).double().clamp_min(1)
    return {"dice": dice, "iou": iou, "mae": abs_err.double() / pixels}


def summarize(counts: Tensor, abs_err: Tensor) -> dict[str, Any]:
    """Both conventions as python floats; an empty split gives NaN rather than a made-up score."""
    n = int(counts.shape[0])
    if n == 0:
        nan = math.nan
        return {
            "n_images": 0,
            "per_image": {"mdice": nan, "miou": nan, "mae": nan},
            "pooled": dict.fromkeys(("dice", "iou", "accuracy", "sensitivity", "specificity"), nan),
        }
    scores = per_image_scores(counts, abs_err)
    return {
        "n_images": n,
        "per_image": {
            "mdice": float(scores["dice"].mean()),
            "miou": float(scores["iou"].mean()),
            "mae": float(scores["mae"].mean()),
        },
        "pooled": pooled_scores(counts),
    }


class SegmentationMetrics:
    """Accumulates per-image statistics batch by batch; gathers them across ranks on ``sync()``.

    Only ``B×4`` counts, ``B`` absolute-error sums and ``B`` sample indices are kept per batch, on the
    device of the inputs, so validation never copies maps to the host.
    """

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        self._counts: list[Tensor] = []
        self._abs_err: list[Tensor] = []
        self._indices: list[Tensor] = []
        self._seen = 0  # running index for batches given without indices
        self._device: torch.device | None = None

    @torch.no_grad()
    def update(self, probs: Tensor, masks: Tensor, indices: Tensor | None = None) -> None:
        """Add a batch: probabilities in [0, 1] and {0, 1} masks, ``B×1×H×W`` or ``B×H×W``.

        ``indices`` are the samples' positions in the split; under a DistributedSampler they let
        ``sync()`` drop the samples it repeated to pad the last batch.
        """
        probs = probs.detach()
        batch = probs.shape[0]
        if indices is None:
            indices = torch.arange(self._seen, self._seen + batch, device=probs.device)
        elif indices.numel() != batch:
            raise ValueError(f"got {indices.numel()} indices for a batch of {batch}")
        self._seen += batch
        self._device = probs.device
        self._counts.append(confusion_per_image(probs, masks, self.threshold))
        self._abs_err.append(abs_error_per_image(probs, masks))
        self._indices.append(indices.reshape(-1).to(device=probs.device, dtype=torch.int64))

    def _tables(self) -> tuple[Tensor, Tensor, Tensor]:
        """(indices, counts, abs_err) of everything added, ordered by index without duplicates."""
        if not self._counts:
            dev = self._device or self._empty_device()
            return (
                torch.zeros(0, dtype=torch.int64, device=dev),
                torch.zeros(0, 4, dtype=torch.int64, device=dev),
                torch.zeros(0, dtype=torch.float32, device=dev),
            )
        return merge_gathered(
            [torch.cat(self._indices)], [torch.cat(self._counts)], [torch.cat(self._abs_err)]
        )

    @staticmethod
    def _empty_device() -> torch.device:
        """Where a rank that saw no batch keeps its (empty) tables: NCCL gathers only CUDA tensors."""
        if torch.distributed.is_initialized() and torch.distributed.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _host_tables(self) -> tuple[Tensor, Tensor, Tensor]:
        """The tables on the CPU: a few numbers per image, and float64 scores (MPS has no float64)."""
        idx, counts, abs_err = self._tables()
        return idx.cpu(), counts.cpu(), abs_err.cpu()

    def sync(self) -> None:
        """Under an initialised process group, make every rank hold the whole split's statistics."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        idx, counts, abs_err = self._tables()
        gathered = all_gather_rows([idx, counts, abs_err])
        idx, counts, abs_err = merge_gathered(*gathered)
        self._indices, self._counts, self._abs_err = [idx], [counts], [abs_err]

    def compute(self) -> dict[str, Any]:
        """``{"n_images", "per_image": {mdice, miou, mae}, "pooled": {dice, iou, accuracy, ...}}``."""
        _, counts, abs_err = self._host_tables()
        return summarize(counts, abs_err)

    def per_case(self) -> list[dict[str, Any]]:
        """One row per image, ordered by index: index, dice, iou, mae, gt_pixels, pred_pixels."""
        idx, counts, abs_err = self._host_tables()
        scores = per_image_scores(counts, abs_err)
        columns = {
            "index": idx,
            "dice": scores["dice"],
            "iou": scores["iou"],
            "mae": scores["mae"],
            "gt_pixels": counts[:, TP] + counts[:, FN],
            "pred_pixels": counts[:, TP] + counts[:, FP],
        }
        as_lists = {k: v.cpu().tolist() for k, v in columns.items()}
        return [dict(zip(as_lists, row)) for row in zip(*as_lists.values())]
