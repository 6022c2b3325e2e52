"""Training-recipe options: the structure loss, multi-scale batches and the weight average (EMA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import recipe_settings

from microaunet_cli.checkpoints import load_checkpoint
from microaunet_cli.config import RunSettings
from microaunet_cli.data import PrepareSettings, prepare_dataset
from microaunet_cli.models import create_model
from microaunet_cli.training.augment import multiscale_side, resize_batch
from microaunet_cli.training.ema import WeightAverage
from microaunet_cli.training.runner import distill, train_teacher

SIZE = 64


def test_multiscale_side_is_repeatable_and_rounded_to_32():
    sides = {multiscale_side(352, [0.75, 1.0, 1.25], 0, 0, b) for b in range(60)}
    assert sides == {256, 352, 448}  # 264 -> 256, 440 -> 448: multiples of 32
    assert multiscale_side(352, [0.75, 1.0, 1.25], 3, 7, 11) == multiscale_side(
        352, [0.75, 1.0, 1.25], 3, 7, 11
    )
    assert [multiscale_side(128, [0.75, 1.25], 0, 0, b) for b in range(5)] != [
        multiscale_side(128, [0.75, 1.25], 1, 0, b) for b in range(5)
    ]
    assert multiscale_side(128, [], 0, 0, 0) == 128


def test_resize_batch_keeps_image_and_mask_aligned():
    images = torch.zeros(1, 3, 64, 64)
    masks = torch.zeros(1, 1, 64, 64)
    images[..., 16:32, 40:56] = 1.0
    masks[..., 16:32, 40:56] = 1.0
    x, y = resize_batch(images, masks, 96)
    assert x.shape == (1, 3, 96, 96) and y.shape == (1, 1, 96, 96)
    assert set(y.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(y[0, 0] > 0.5, x[0, 0] > 0.5)
    assert int(y.sum()) == 24 * 24


def test_resize_batch_is_bilinear_with_pixel_centres_and_masks_strictly_over_half():
    from oracles import bilinear_resize

    images = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    masks = torch.zeros(2, 1, 5, 5)
    masks[:, :, 1:4, 2:] = 1.0
    x, y = resize_batch(images, masks, 8)
    want = np.stack([[bilinear_resize(c.numpy(), 8, 8) for c in im] for im in images])
    np.testing.assert_allclose(x.numpy(), want, atol=1e-6)
    want_masks = np.stack([[bilinear_resize(m[0].numpy(), 8, 8) > 0.5] for m in masks])
    assert y.dtype == masks.dtype and np.array_equal(y.numpy() > 0, want_masks)
    # 2 -> 3 puts the middle column exactly halfway between a polyp and a background pixel: background
    half = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    _, y = resize_batch(half, half, 3)
    assert y[0, 0].tolist() == [[1.0, 0.0, 0.0]] * 3


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (6, 6)])
def test_resize_batch_resizes_unless_already_square_at_the_side(shape):
    images, masks = torch.rand(1, 3, *shape), torch.ones(1, 1, *shape)
    x, y = resize_batch(images, masks, 6)
    assert x.shape == (1, 3, 6, 6) and y.shape == (1, 1, 6, 6)
    assert (x is images) is (shape == (6, 6))


def test_weight_average_state_round_trip():
    avg = WeightAverage(torch.nn.Linear(2, 1), decay=0.99)
    avg.update()
    avg.update()
    assert avg.state_dict() == {"steps": 2, "decay": 0.99}
    fresh = WeightAverage(torch.nn.Linear(2, 1), decay=0.99)
    fresh.load(avg.model.state_dict(), avg.state_dict())
    assert fresh.steps == 2 and torch.equal(fresh.model.weight, avg.model.weight)
    fresh.load(avg.model.state_dict(), {})  # a state without a step count starts the warm-up again
    assert fresh.steps == 0 and fresh.rate() == pytest.approx(0.1)


def test_weight_average_follows_the_formula_with_its_warm_up():
    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    avg = WeightAverage(net, decay=0.9)
    expected = 0.0
    for step, value in enumerate([1.0, 2.0, 3.0, 4.0]):
        with torch.no_grad():
            net.weight.fill_(value)
        avg.update()
        d = min(0.9, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * value
        assert float(avg.model.weight[0, 0]) == pytest.approx(expected, rel=1e-6)
    assert not avg.model.weight.requires_grad


def test_weight_average_averages_float_state_and_copies_step_counts():
    """BatchNorm's running statistics are averaged like weights; its step count is an integer and is
    copied, and an untouched tensor stays put."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    avg = WeightAverage(net, decay=0.9)
    net.train()(torch.randn(4, 1, 3, 3))  # moves running_mean/var and counts one batch
    before = avg.model.state_dict()["0.weight"].clone()
    avg.update()
    live, kept = net.state_dict(), avg.model.state_dict()
    assert int(kept["1.num_batches_tracked"]) == int(live["1.num_batches_tracked"]) == 1
    start = torch.zeros(2)
    torch.testing.assert_close(kept["1.running_mean"], start + 0.9 * (live["1.running_mean"] - start))
    torch.testing.assert_close(kept["0.weight"], before)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "synthetic"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=out, size=SIZE, synthetic_count=40, workers=1))
    return out


def _settings(prepared: Path, runs: Path, *sets: str) -> RunSettings:
    return recipe_settings(prepared, runs, *sets)


def test_ema_run_saves_the_average_and_resumes_exactly(prepared, tmp_path):
    recipe = ("train.ema_decay=0.9", "train.loss=structure", "augment.multiscale=[0.5,1.0,1.5]")
    train_teacher(_settings(prepared, tmp_path / "a", "train.epochs=4", *recipe))
    train_teacher(_settings(prepared, tmp_path / "b", "train.epochs=2", *recipe))
    train_teacher(_settings(prepared, tmp_path / "b", "train.epochs=4", *recipe), resume=True)
    last = [
        load_checkpoint(p / "synthetic-malunet" / "checkpoints" / "last.pt")
        for p in (tmp_path / "a", tmp_path / "b")
    ]
    for key in last[0]["model"]:
        assert torch.equal(last[0]["model"][key], last[1]["model"][key]), key
        assert torch.equal(last[0]["train_model"][key], last[1]["train_model"][key]), key
    a = last[0]
    assert a["ema"]["steps"] == last[1]["ema"]["steps"] > 4  # the warm-up position survives a resume
    moved = [
        k
        for k in a["model"]
        if a["model"][k].is_floating_point() and not torch.equal(a["model"][k], a["train_model"][k])
    ]
    assert moved, "the saved network must be the average, not the raw weights"
    # What consumers load ("model") is the average, and a network built from it runs.
    net = create_model("malunet")
    net.load_state_dict(a["model"])


def test_weight_average_leaves_the_training_unchanged(prepared, tmp_path):
    # The average only watches: with it and without, one seed trains the same weights bit for bit,
    # so the two runs' validation curves differ only in which weights were scored (the comparison
    # docs/RESULTS.md rests its choice on).
    train_teacher(_settings(prepared, tmp_path / "avg", "train.epochs=2", "train.ema_decay=0.9"))
    train_teacher(_settings(prepared, tmp_path / "raw", "train.epochs=2"))
    avg, raw = (
        load_checkpoint(tmp_path / run / "synthetic-malunet" / "checkpoints" / "last.pt")
        for run in ("avg", "raw")
    )
    assert "train_model" not in raw
    for key, value in raw["model"].items():
        assert torch.equal(avg["train_model"][key], value), key
    assert any(not torch.equal(avg["model"][k], v) for k, v in raw["model"].items())


def test_distill_with_structure_loss_and_multiscale_runs(prepared, tmp_path):
    train_teacher(_settings(prepared, tmp_path, "train.epochs=1"))
    summary = distill(
        _settings(
            prepared,
            tmp_path,
            "model.name=microaunet_rt",
            "train.epochs=2",
            "train.loss=structure",
            "augment.multiscale=[0.5,1.5]",
            "train.ema_decay=0.5",
            "distill.imitation_fraction=0.5",
        )
    )
    assert summary.status == "completed"
    rows = (tmp_path / "synthetic-microaunet_rt-distill" / "metrics.jsonl").read_text()
    assert "train_wbce" in rows and "train_wiou" in rows and "train_infonce" in rows
