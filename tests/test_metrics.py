"""Metrics against confusion matrices counted by hand (SPEC section 3)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from microaunet_cli.evaluation.gather import merge_gathered
from microaunet_cli.evaluation.metrics import (
    SegmentationMetrics,
    confusion_per_image,
    dice_iou,
    pooled_scores,
)


def _img(rows: list[str]) -> torch.Tensor:
    """A 1×H×W map from strings: '1' foreground, '0' background."""
    return torch.tensor([[float(c) for c in r] for r in rows]).unsqueeze(0)


# Four 2×4 images (8 pixels each). Probabilities: 0.9 where the prediction is "1", 0.2 elsewhere.
GT = [
    _img(["1100", "1100"]),  # 4 fg
    _img(["0000", "0000"]),  # empty GT, empty prediction   -> both empty, scores 1
    _img(["0000", "0000"]),  # empty GT, 2 false-positive px -> scores 0
    _img(["0011", "0000"]),  # 2 fg, prediction empty        -> scores 0
]
PRED = [
    _img(["1110", "1000"]),  # tp 3, fp 1, fn 1, tn 3
    _img(["0000", "0000"]),  # tp 0, fp 0, fn 0, tn 8
    _img(["1000", "0001"]),  # tp 0, fp 2, fn 0, tn 6
    _img(["0000", "0000"]),  # tp 0, fp 0, fn 2, tn 6
]
HAND = torch.tensor([[3, 1, 1, 3], [0, 0, 0, 8], [0, 2, 0, 6], [0, 0, 2, 6]])


def _probs(pred: torch.Tensor) -> torch.Tensor:
    return torch.where(pred > 0, torch.tensor(0.9), torch.tensor(0.2))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    probs = torch.stack([_probs(p) for p in PRED])  # 4×1×2×4
    masks = torch.stack(GT).to(torch.uint8)
    return probs, masks


def test_confusion_matches_hand_count():
    probs, masks = _batch()
    assert torch.equal(confusion_per_image(probs, masks), HAND)
    # B×H×W and boolean masks give the same counts
    assert torch.equal(confusion_per_image(probs[:, 0], masks[:, 0].bool()), HAND)


def test_threshold_is_strict_at_half():
    # Same rule as the export sidecar ("mask = probability > threshold").
    probs = torch.tensor([[[0.5001, 0.5]]])
    masks = torch.tensor([[[1, 1]]])
    assert confusion_per_image(probs, masks).tolist() == [[1, 0, 1, 0]]


def test_per_image_dice_iou_with_empty_masks():
    dice, iou = dice_iou(HAND)
    assert dice.tolist() == pytest.approx([6 / 8, 1.0, 0.0, 0.0])
    assert iou.tolist() == pytest.approx([3 / 5, 1.0, 0.0, 0.0])


def test_pooled_scores_from_one_confusion_matrix():
    # Summed matrix: tp 3, fp 3, fn 3, tn 23 over 32 pixels.
    s = pooled_scores(HAND)
    assert s["dice"] == pytest.approx(6 / 12)
    assert s["iou"] == pytest.approx(3 / 9)
    assert s["accuracy"] == pytest.approx(26 / 32)
    assert s["sensitivity"] == pytest.approx(3 / 6)
    assert s["specificity"] == pytest.approx(23 / 26)


def test_accumulator_summary_and_per_case():
    probs, masks = _batch()
    m = SegmentationMetrics()
    m.update(probs[:3], masks[:3])
    m.update(probs[3:], masks[3:])
    out = m.compute()
    assert out["n_images"] == 4
    assert out["per_image"]["mdice"] == pytest.approx((0.75 + 1 + 0 + 0) / 4)
    assert out["per_image"]["miou"] == pytest.approx((0.6 + 1 + 0 + 0) / 4)
    # MAE on probabilities: |0.9-1| = 0.1, |0.2-0| = 0.2, |0.9-0| = 0.9, |0.2-1| = 0.8
    maes = [
        (3 * 0.1 + 1 * 0.9 + 1 * 0.8 + 3 * 0.2) / 8,
        0.2,
        (2 * 0.9 + 6 * 0.2) / 8,
        (2 * 0.8 + 6 * 0.2) / 8,
    ]
    assert out["per_image"]["mae"] == pytest.approx(sum(maes) / 4, abs=1e-6)
    assert out["pooled"]["dice"] == pytest.approx(0.5)
    rows = m.per_case()
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert [r["gt_pixels"] for r in rows] == [4, 0, 0, 2]
    assert [r["pred_pixels"] for r in rows] == [4, 0, 2, 0]
    assert [r["mae"] for r in rows] == pytest.approx(maes, abs=1e-6)
    assert all(isinstance(v, float) for v in out["pooled"].values())


def test_accumulator_orders_by_given_indices_and_drops_repeats():
    probs, masks = _batch()
    m = SegmentationMetrics()
    m.update(probs[[2, 0]], masks[[2, 0]], torch.tensor([2, 0]))
    m.update(probs[[3, 1, 0]], masks[[3, 1, 0]], torch.tensor([3, 1, 0]))  # 0 repeated (sampler padding)
    assert [r["index"] for r in m.per_case()] == [0, 1, 2, 3]
    assert m.compute()["per_image"]["mdice"] == pytest.approx(0.4375)


def test_empty_accumulator_gives_nan_not_a_score():
    out = SegmentationMetrics().compute()
    assert out["n_images"] == 0 and math.isnan(out["per_image"]["mdice"])


def test_merge_gathered_drops_sampler_padding():
    # 5 samples over 2 ranks: DistributedSampler gives rank0 [0, 2, 4], rank1 [1, 3, 0] (0 repeated).
    counts = torch.arange(20).view(5, 4)
    err = torch.arange(5, dtype=torch.float32)
    rank0, rank1 = torch.tensor([0, 2, 4]), torch.tensor([1, 3, 0])
    idx, cnt, e = merge_gathered([rank0, rank1], [counts[rank0], counts[rank1]], [err[rank0], err[rank1]])
    assert idx.tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(cnt, counts)
    assert torch.equal(e, err)


def _ddp_worker(rank: int, world: int, init_file: str, result_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        probs, masks = _batch()
        # Five samples (the fourth image repeated as sample 4); the sampler pads rank 1 with sample 0.
        probs, masks = torch.cat([probs, probs[3:]]), torch.cat([masks, masks[3:]])
        mine = torch.tensor([[0, 2, 4], [1, 3, 0]][rank])
        m = SegmentationMetrics()
        m.update(probs[mine], masks[mine], mine)
        m.sync()
        # A rank that saw no batch at all still takes part in the gather.
        lonely = SegmentationMetrics()
        if rank == 0:
            lonely.update(probs[:2], masks[:2], torch.tensor([0, 1]))
        lonely.sync()
        if rank == 0:
            torch.save(
                {"summary": m.compute(), "rows": m.per_case(), "lonely": lonely.compute()}, result_file
            )
    finally:
        dist.destroy_process_group()


def test_sync_under_two_gloo_processes(tmp_path):
    result = tmp_path / "result.pt"
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(result)), nprocs=2, join=True)
    got = torch.load(result, weights_only=True)
    assert got["summary"]["n_images"] == 5
    assert [r["index"] for r in got["rows"]] == [0, 1, 2, 3, 4]
    assert got["summary"]["per_image"]["mdice"] == pytest.approx((0.75 + 1 + 0 + 0 + 0) / 5)
    assert got["lonely"]["n_images"] == 2
