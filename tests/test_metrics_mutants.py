"""Metrics checks that the mutation run (scripts/mutation.sh metrics) showed missing: a threshold other
than the default, denominators of exactly one, one-pixel images, a one-image split, asymmetric errors,
the empty summary's full shape, and ``sync()`` in this process (the two-process test runs in children).

Every expected number is counted by hand from the pixel lists below, not by the functions under test.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist

from microaunet_cli.evaluation.metrics import (
    SegmentationMetrics,
    confusion_per_image,
    dice_iou,
    per_image_scores,
    pooled_scores,
    summarize,
)

POOLED_KEYS = ("dice", "iou", "accuracy", "sensitivity", "specificity")


def test_confusion_uses_the_threshold_it_is_given():
    probs = torch.tensor([[[0.7, 0.9, 0.3]]])
    masks = torch.tensor([[[1, 1, 0]]])
    # at 0.8 only 0.9 is foreground: tp 1 (0.9), fn 1 (0.7), tn 1 (0.3)
    assert confusion_per_image(probs, masks, threshold=0.8).tolist() == [[1, 0, 1, 1]]
    assert confusion_per_image(probs, masks).tolist() == [[2, 0, 0, 1]]
    m = SegmentationMetrics(threshold=0.8)
    m.update(probs, masks)
    assert m.per_case()[0]["pred_pixels"] == 1


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"probabilities \(1, 2, 3\) and masks \(1, 3, 2\) differ in shape"):
        confusion_per_image(torch.zeros(1, 2, 3), torch.zeros(1, 3, 2))


def test_denominators_of_exactly_one():
    # one correct foreground pixel: IoU = 1/1, sensitivity 1/1; one false alarm: IoU = 0/1
    counts = torch.tensor([[1, 0, 0, 3], [0, 1, 0, 3]])
    dice, iou = dice_iou(counts)
    assert dice.tolist() == [1.0, 0.0]
    assert iou.tolist() == [1.0, 0.0]
    s = pooled_scores(counts[:1])
    assert s["sensitivity"] == 1.0 and s["iou"] == 1.0
    # a lone missed pixel: sensitivity 0/1, and specificity 0/1 for a lone false alarm
    assert pooled_scores(torch.tensor([[0, 0, 1, 0]]))["sensitivity"] == 0.0
    assert pooled_scores(torch.tensor([[0, 1, 0, 0]]))["specificity"] == 0.0


def test_mae_of_a_one_pixel_image():
    counts = torch.tensor([[1, 0, 0, 0]])
    assert per_image_scores(counts, torch.tensor([0.25]))["mae"].tolist() == [0.25]


def test_pooled_scores_with_more_false_positives_than_false_negatives():
    # totals: tp 7, fp 5, fn 3, tn 17 over 32 pixels; swapping fp and fn changes every score but Dice/IoU
    counts = torch.tensor([[5, 1, 3, 7], [2, 4, 0, 10]])
    s = pooled_scores(counts)
    assert s["dice"] == pytest.approx(14 / 22)
    assert s["iou"] == pytest.approx(7 / 15)
    assert s["accuracy"] == pytest.approx(24 / 32)
    assert s["sensitivity"] == pytest.approx(7 / 10)
    assert s["specificity"] == pytest.approx(17 / 22)


def test_a_split_of_one_image_is_scored():
    probs = torch.tensor([[[0.9, 0.9, 0.1, 0.6]]])
    masks = torch.tensor([[[1, 0, 0, 1]]])
    out = summarize(confusion_per_image(probs, masks), torch.tensor([0.1 + 0.9 + 0.1 + 0.4]))
    assert out["n_images"] == 1
    # tp 2, fp 1, fn 0: Dice 4/5, IoU 2/3, MAE 1.5/4
    assert out["per_image"] == pytest.approx({"mdice": 0.8, "miou": 2 / 3, "mae": 0.375})
    assert out["pooled"]["dice"] == pytest.approx(0.8)


def test_empty_summary_is_nan_under_every_key():
    out = summarize(torch.zeros(0, 4, dtype=torch.int64), torch.zeros(0))
    assert out["n_images"] == 0
    assert set(out["per_image"]) == {"mdice", "miou", "mae"}
    assert set(out["pooled"]) == set(POOLED_KEYS)
    assert all(math.isnan(v) for v in [*out["per_image"].values(), *out["pooled"].values()])


def test_per_case_rows_name_dice_and_iou():
    probs = torch.tensor([[[0.9, 0.9, 0.1, 0.1]], [[0.9, 0.1, 0.1, 0.1]]])
    masks = torch.tensor([[[1, 0, 0, 0]], [[1, 1, 1, 0]]])
    m = SegmentationMetrics()
    m.update(probs, masks)
    rows = m.per_case()
    # image 0: tp 1, fp 1 -> Dice 2/3, IoU 1/2; image 1: tp 1, fn 2 -> Dice 2/4, IoU 1/3
    assert [r["dice"] for r in rows] == pytest.approx([2 / 3, 0.5])
    assert [r["iou"] for r in rows] == pytest.approx([0.5, 1 / 3])


def test_empty_tables_have_their_shapes_dtypes_and_device(monkeypatch):
    # where a rank that saw no batch keeps its tables is _empty_device's choice (CUDA under NCCL)
    monkeypatch.setattr(SegmentationMetrics, "_empty_device", staticmethod(lambda: torch.device("meta")))
    idx, counts, abs_err = SegmentationMetrics()._tables()
    assert (idx.shape, counts.shape, abs_err.shape) == ((0,), (0, 4), (0,))
    assert (idx.dtype, counts.dtype, abs_err.dtype) == (torch.int64, torch.int64, torch.float32)
    assert {idx.device.type, counts.device.type, abs_err.device.type} == {"meta"}


def test_empty_device_is_cuda_under_nccl_and_cpu_otherwise(monkeypatch):
    assert SegmentationMetrics._empty_device() == torch.device("cpu")
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    monkeypatch.setattr(dist, "get_backend", lambda: "gloo")
    assert SegmentationMetrics._empty_device() == torch.device("cpu")
    monkeypatch.setattr(dist, "get_backend", lambda: "nccl")
    assert SegmentationMetrics._empty_device() == torch.device("cuda", 3)


@pytest.fixture
def one_rank_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _two_batches() -> SegmentationMetrics:
    m = SegmentationMetrics()
    probs = torch.tensor([[[0.9, 0.1]], [[0.9, 0.9]], [[0.1, 0.1]]])
    masks = torch.tensor([[[1, 0]], [[1, 1]], [[1, 0]]])
    m.update(probs[[1, 0]], masks[[1, 0]], torch.tensor([1, 0]))
    m.update(probs[[2, 1]], masks[[2, 1]], torch.tensor([2, 1]))  # 1 repeated, as a sampler pads
    return m


def test_sync_without_a_process_group_keeps_the_batches():
    m = _two_batches()
    m.sync()
    assert len(m._counts) == 2
    assert [r["index"] for r in m.per_case()] == [0, 1, 2]


def test_sync_in_a_one_rank_group_merges_into_one_ordered_table(one_rank_group):
    m = _two_batches()
    m.sync()
    assert [t.tolist() for t in m._indices] == [[0, 1, 2]]
    assert [t.tolist() for t in m._counts] == [[[1, 0, 0, 1], [2, 0, 0, 0], [0, 0, 1, 1]]]
    assert [t.tolist() for t in m._abs_err] == [pytest.approx([0.2, 0.2, 1.0])]
    # an accumulator that saw nothing keeps its empty tables on the CPU under gloo
    empty = SegmentationMetrics()
    empty.sync()
    assert empty.compute()["n_images"] == 0
