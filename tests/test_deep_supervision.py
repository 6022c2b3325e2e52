"""Deep supervision (train.deep_supervision): side outputs on the decoder, training-only heads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import recipe_settings

from microaunet_cli.checkpoints import load_checkpoint, load_trained
from microaunet_cli.config import DistillSettings, RunSettings
from microaunet_cli.data import PrepareSettings, prepare_dataset
from microaunet_cli.errors import ConfigError
from microaunet_cli.losses import SEGMENTATION_LOSSES
from microaunet_cli.models import create_model, list_models
from microaunet_cli.training.deep_supervision import DeepSupervision
from microaunet_cli.training.distillation import DistillationObjective
from microaunet_cli.training.objectives import SegmentationObjective, StepContext
from microaunet_cli.training.runner import distill, train_teacher

SIZE = 64


def _batch(seed: int = 0, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(2, 3, size, size, generator=g)
    masks = (torch.rand(2, 1, size, size, generator=g) > 0.6).float()
    return images, masks


def _ctx() -> StepContext:
    return StepContext(epoch=0, progress=0.0, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", list_models())
def test_every_network_taps_three_decoder_stages_at_strides_32_16_8(name):
    net = create_model(name).train()
    taps = net.deep_supervision_taps()
    seen = {}
    for i, (module, _) in enumerate(taps):
        module.register_forward_hook(lambda _m, _i, out, i=i: seen.__setitem__(i, out))
    net(torch.randn(1, 3, 128, 128))
    assert [tuple(seen[i].shape[1:]) for i in range(3)] == [
        (c, 128 // s, 128 // s) for (_, c), s in zip(taps, (32, 16, 8))
    ]


@pytest.mark.parametrize("loss", ["bce_dice", "structure"])
def test_side_loss_is_the_weighted_mean_of_the_upsampled_side_maps_losses(loss):
    torch.manual_seed(0)
    objective = SegmentationObjective(create_model("microaunet_rt"), loss, deep_supervision=0.3).train()
    net, seg = objective.model, SEGMENTATION_LOSSES[loss]
    maps = {}
    for i, (module, _) in enumerate(net.deep_supervision_taps()):
        module.register_forward_hook(lambda _m, _i, out, i=i: maps.__setitem__(i, out))
    images, masks = _batch()
    total, terms = objective(images, masks, _ctx())
    main, _ = seg(net(images), masks)
    sides = [
        seg(F.interpolate(head(maps[i]), size=(SIZE, SIZE), mode="bilinear", align_corners=False), masks)[0]
        for i, head in enumerate(objective.side.heads)
    ]
    want_side = (0.3 * sum(sides) / 3).detach()
    assert float(terms["side"]) == pytest.approx(float(want_side), rel=1e-5)
    assert float(total.detach()) == pytest.approx(float(main.detach() + want_side), rel=1e-5)
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in objective.side.parameters())


def test_off_by_default_the_objective_is_unchanged():
    torch.manual_seed(0)
    plain = SegmentationObjective(create_model("malunet"))
    assert plain.side is None
    assert all(k.startswith("model.") for k in plain.state_dict())
    images, masks = _batch()
    loss, terms = plain(images, masks, _ctx())
    assert "side" not in terms
    assert torch.equal(loss, SEGMENTATION_LOSSES["bce_dice"](plain.model(images), masks)[0])


def test_nothing_is_kept_outside_the_objectives_forward_pass():
    objective = SegmentationObjective(create_model("microaunet_rt"), deep_supervision=1.0)
    images, masks = _batch()
    objective.model(images)  # validation, export, a weight average: not armed
    assert objective.side._captured is None
    with pytest.raises(RuntimeError, match="did not reach every tap"):
        objective.side.side_loss(masks, SEGMENTATION_LOSSES["bce_dice"])
    objective(images, masks, _ctx())
    assert objective.side._captured is None  # released after the step


def test_a_network_without_taps_is_a_clear_error():
    class Plain(torch.nn.Module):
        num_classes = 1

    with pytest.raises(ConfigError, match="names no decoder stages.*train.deep_supervision=0"):
        DeepSupervision(Plain(), 0.5)


def test_distillation_adds_the_side_term_and_keeps_its_other_heads_unchanged():
    def build(weight: float) -> DistillationObjective:
        torch.manual_seed(0)
        student, teacher = create_model("microaunet_rt"), create_model("malunet")
        torch.manual_seed(1)
        return DistillationObjective(student, teacher, DistillSettings(), 4, deep_supervision=weight).train()

    with_side, without = build(0.5), build(0.0)
    for key, value in without.state_dict().items():  # the side heads are drawn after everything else
        assert torch.equal(value, with_side.state_dict()[key]), key
    images, masks = _batch(1)
    loss, terms = with_side(images, masks, _ctx())
    base, base_terms = without(images, masks, _ctx())
    assert "side" not in base_terms and float(terms["side"]) > 0
    assert float(loss.detach()) == pytest.approx(float((base + terms["side"]).detach()), rel=1e-5)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "synthetic"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=out, size=SIZE, synthetic_count=40, workers=1))
    return out


def _settings(prepared: Path, runs: Path, *sets: str) -> RunSettings:
    return recipe_settings(prepared, runs, "train.deep_supervision=0.5", *sets)


def test_runs_save_the_heads_to_resume_but_never_in_the_network(prepared, tmp_path):
    train_teacher(_settings(prepared, tmp_path, "train.epochs=1"))
    student = ("model.name=microaunet_rt", "train.ema_decay=0.5", "distill.imitation_fraction=0.5")
    distill(
        _settings(
            prepared, tmp_path / "a", *student, "train.epochs=2", f"distill.teacher={_teacher(tmp_path)}"
        )
    )
    distill(
        _settings(
            prepared, tmp_path / "b", *student, "train.epochs=1", f"distill.teacher={_teacher(tmp_path)}"
        )
    )
    distill(
        _settings(
            prepared, tmp_path / "b", *student, "train.epochs=2", f"distill.teacher={_teacher(tmp_path)}"
        ),
        resume=True,
    )
    run = "synthetic-microaunet_rt-distill"
    a, b = (load_checkpoint(p / run / "checkpoints" / "last.pt") for p in (tmp_path / "a", tmp_path / "b"))
    plain = create_model("microaunet_rt").state_dict()
    assert set(a["model"]) == set(plain)  # what evaluate, export and predict load: the network alone
    heads = {k for k in a["objective_extra"] if k.startswith("side.")}
    assert heads == {f"side.heads.{i}.{p}" for i in range(3) for p in ("weight", "bias")}
    for key in heads:  # the heads resume exactly
        assert torch.equal(a["objective_extra"][key], b["objective_extra"][key]), key
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    rows = (tmp_path / "a" / run / "metrics.jsonl").read_text()
    assert "train_side" in rows
    trained = load_trained(tmp_path / "a" / run / "checkpoints" / "best.pt")
    assert trained.network(torch.zeros(1, 3, SIZE, SIZE)).shape == (1, 1, SIZE, SIZE)


def _teacher(runs: Path) -> Path:
    return runs / "synthetic-malunet" / "checkpoints" / "best.pt"
