"""The distillation curriculum and its bookkeeping (training/distillation.py): the stage boundary on a
resume, the text and records it leaves, the masks and settings handed to the contrastive term, and the
teacher's checksum, each against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from microaunet_cli.config import DistillSettings
from microaunet_cli.models import create_model
from microaunet_cli.training import distillation
from microaunet_cli.training.distillation import (
    DistillationObjective,
    ProjectionHead,
    imitation_epochs,
    state_checksum,
)


@pytest.fixture(scope="module")
def nets():
    return create_model("microaunet_rt"), create_model("malunet").eval()


def _objective(nets, epochs: int = 10, **cfg) -> DistillationObjective:
    student, teacher = nets
    return DistillationObjective(
        student, teacher, DistillSettings(**cfg), epochs=epochs, teacher_info={"checksum": 1.5}
    )


@pytest.mark.parametrize(
    "epochs, fraction, expected",
    [
        (10, 0.6, 6),
        (5, 0.6, 3),
        (7, 0.6, 5),
        (1, 0.6, 1),
        (5, 0.0, 0),
        (5, 1.0, 5),
        (3, 0.999, 3),
        (10, 0.05, 1),
    ],
)
def test_imitation_epochs_by_hand(epochs, fraction, expected):
    assert imitation_epochs(epochs, fraction) == expected


def _ckpt(old_epochs: int, saved: int | None) -> dict:
    ckpt = {"settings": {"train": {"epochs": old_epochs}}}
    if saved is not None:
        ckpt["curriculum"] = {"stage1_epochs": saved}
    return ckpt


def test_a_resume_with_the_same_epochs_keeps_the_recorded_boundary(nets):
    obj = _objective(nets, epochs=10)
    obj.resumed(_ckpt(10, 4), epochs=10, epochs_begun=2)  # recorded 4, though 0.6 × 10 is 6
    assert obj.stage1_epochs == 4


def test_a_longer_run_moves_the_boundary_to_its_fraction(nets):
    obj = _objective(nets, epochs=20)  # 0.6 × 20 = 12
    obj.resumed(_ckpt(10, 6), epochs=20, epochs_begun=3)
    assert obj.stage1_epochs == 12


def test_a_stage_one_epoch_already_begun_stays_stage_one(nets):
    obj = _objective(nets, epochs=5)  # 0.6 × 5 = 3, but epochs 0..4 of the 10-epoch plan are begun
    obj.resumed(_ckpt(10, 6), epochs=5, epochs_begun=5)
    assert obj.stage1_epochs == 5
    exactly = _objective(nets, epochs=5)
    exactly.resumed(_ckpt(10, 6), epochs=5, epochs_begun=6)  # all of stage 1 begun, none of stage 2
    assert exactly.stage1_epochs == 6


def test_a_stage_two_already_begun_is_never_left(nets):
    obj = _objective(nets, epochs=20)  # 12 for a fresh run of 20
    obj.resumed(_ckpt(10, 6), epochs=20, epochs_begun=7)
    assert obj.stage1_epochs == 6


def test_a_checkpoint_without_a_recorded_boundary_takes_its_own_fraction(nets):
    obj = _objective(nets, epochs=10)
    obj.resumed(_ckpt(7, None), epochs=10, epochs_begun=6)  # 0.6 × 7 -> 5, and stage 2 begun
    assert obj.stage1_epochs == 5
    same = _objective(nets, epochs=7)
    same.resumed(_ckpt(7, None), epochs=7, epochs_begun=1)
    assert same.stage1_epochs == 5


def test_describe_and_plan(nets):
    obj = _objective(nets, epochs=10)
    assert obj.describe(10) == (
        "curriculum: stage 1 (imitation, ω over 6 epochs) epochs 1-6, stage 2 (preference) epochs 7-10 of 10"
    )
    assert obj.plan() == {"curriculum": {"stage1_epochs": 6}}
    all_one = _objective(nets, epochs=4, imitation_fraction=1.0)
    assert (
        all_one.describe(4) == "curriculum: stage 1 (imitation, ω over 4 epochs) epochs 1-4, no stage 2 of 4"
    )
    assert [all_one.stage_of(e) for e in range(4)] == [1, 1, 1, 1]
    assert [obj.stage_of(e) for e in (5, 6)] == [1, 2] and obj.stage(6) == {"stage": 2}


def test_omega_runs_over_the_stage_one_epochs(nets):
    obj = _objective(nets, epochs=10)  # stage 1: 6 epochs
    assert obj.omega(2.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 6)))
    assert obj.omega(6.0) == pytest.approx(1.0)


def test_records_of_the_teacher(nets):
    obj = _objective(nets)
    extras = obj.checkpoint_extras()
    assert extras == {"teacher": {"checksum": 1.5}}
    extras["teacher"]["checksum"] = 0.0
    assert obj.teacher_info == {"checksum": 1.5}  # a copy, not the objective's own record
    assert obj.training_kind == "distilled" and obj.run_suffix == "-distill" and obj.find_unused_parameters


def test_after_run_records_the_checksum_and_refuses_a_changed_teacher(nets):
    student, teacher = nets
    checksum = state_checksum(teacher)
    obj = DistillationObjective(
        student, teacher, DistillSettings(), epochs=10, teacher_info={"checksum": checksum}
    )
    summary = {"teacher": {}}
    obj.after_run(summary)
    assert summary["teacher"]["checksum_after"] == checksum
    changed = DistillationObjective(
        student, teacher, DistillSettings(), epochs=10, teacher_info={"checksum": checksum + 1}
    )
    with pytest.raises(RuntimeError, match="the teacher's weights changed during distillation"):
        changed.after_run({"teacher": {}})


def test_state_checksum_by_hand():
    m = nn.Module()
    m.a = nn.Parameter(torch.tensor([1.0, -2.0]))
    m.register_buffer("b", torch.tensor([3.0]))
    m.register_buffer("n", torch.tensor([7]))  # integers are left out
    # entry 1: sum -1 (×√1) + |.| 3; entry 2: 3·√2 + 3
    assert state_checksum(m) == pytest.approx(-1 + 3 + 3 * math.sqrt(2) + 3)


def test_projection_head_rows_equal_the_map():
    head = ProjectionHead(3, 5)
    x = torch.randn(2, 3, 4, 4)
    rows = x.permute(0, 2, 3, 1).reshape(-1, 3)
    want = head(x).permute(0, 2, 3, 1).reshape(-1, 5)
    torch.testing.assert_close(head.rows(rows), want, rtol=1e-5, atol=1e-6)


def test_the_contrastive_term_gets_labels_preferences_and_settings(nets, monkeypatch):
    seen = {}

    def spy(s_dec, t_dec, labels, **kwargs):
        seen.update(kwargs, labels=labels, s_dec=s_dec, t_dec=t_dec)
        return torch.tensor(0.25)

    monkeypatch.setattr(distillation, "pixel_infonce", spy)
    obj = _objective(nets, n_anchors=7, n_negatives=9, contrast_temperature=0.3, preference_weight=4.0)
    # 4×4 maps, decoder at 2×2: nearest neighbour keeps pixels (0,0), (0,2), (2,0), (2,2)
    masks = torch.zeros(1, 1, 4, 4)
    masks[0, 0, 0, 0] = masks[0, 0, 2, 2] = 1
    s_logits = torch.full((1, 1, 4, 4), -1.0)
    s_logits[0, 0, 0, 0] = s_logits[0, 0, 0, 2] = 1.0  # right at (0,0), wrong at (0,2) and (2,2)
    t_logits = torch.full((1, 1, 4, 4), -1.0)
    t_logits[0, 0, 2, 2] = 1.0  # right everywhere but (0,0)
    s_dec, t_dec = torch.randn(1, 8, 2, 2), torch.randn(1, 32, 2, 2, dtype=torch.float64)
    gen = torch.Generator()
    assert float(obj._contrastive(s_logits, s_dec, t_logits, t_dec, masks, gen)) == 0.25
    assert seen["labels"].tolist() == [[[True, False], [False, True]]]
    assert seen["student_wrong"].tolist() == [[[False, True], [False, True]]]
    assert seen["teacher_right"].tolist() == [[[False, True], [True, True]]]
    assert (seen["n_anchors"], seen["n_negatives"], seen["temperature"], seen["preference_weight"]) == (
        7,
        9,
        0.3,
        4.0,
    )
    assert seen["generator"] is gen and seen["s_dec"] is s_dec and seen["t_dec"].dtype == torch.float32
    assert seen["student_head"] == obj.student_head.rows and seen["teacher_head"] == obj.teacher_head.rows


def test_the_teacher_follows_the_objective_between_devices_and_dtypes(nets):
    obj = _objective(nets)
    obj.double()
    try:
        assert next(obj.teacher.parameters()).dtype == torch.float64
        assert next(obj.model.parameters()).dtype == torch.float64
    finally:
        obj.float()
    assert next(obj.teacher.parameters()).dtype == torch.float32


def test_adapters_map_each_differing_student_level_to_the_teachers_channels(nets):
    student, teacher = nets
    obj = _objective(nets)
    assert len(obj.adapters) == 5
    pairs = list(zip(student.c_list[:5], teacher.c_list[:5], obj.adapters))
    assert any(a != b for a, b, _ in pairs)
    for a, b, adapter in pairs:
        if a == b:
            assert isinstance(adapter, nn.Identity)
        else:
            assert isinstance(adapter, nn.Conv2d) and adapter.weight.shape == (b, a, 1, 1)
            assert adapter.bias is None
    same = DistillationObjective(create_model("malunet"), create_model("malunet"), DistillSettings(), 10)
    assert all(isinstance(a, nn.Identity) for a in same.adapters)


def test_the_teacher_is_frozen_and_in_eval_mode():
    teacher = create_model("malunet").train()
    obj = DistillationObjective(create_model("microaunet_rt"), teacher, DistillSettings(), epochs=10)
    assert obj.teacher is teacher and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())


def test_a_changed_teacher_is_reported_with_the_exact_message(nets):
    obj = _objective(nets)  # checksum 1.5: no network has it
    with pytest.raises(RuntimeError) as err:
        obj.after_run({"teacher": {}})
    message = "the teacher's weights changed during distillation; this is a bug, please report it"
    assert str(err.value) == message


def test_a_longer_run_resumed_at_the_boundary_moves_it(nets):
    obj = _objective(nets, epochs=20)  # 0.6 × 20 = 12; all of stage 1 (6) begun, none of stage 2
    obj.resumed(_ckpt(10, 6), epochs=20, epochs_begun=6)
    assert obj.stage1_epochs == 12


@pytest.mark.parametrize("mode", ["channel_norm", "attention"])
def test_stage_one_imitates_the_skips_with_the_adapters_and_mode(nets, mode):
    from microaunet_cli.losses import feature_mimic
    from microaunet_cli.training.objectives import StepContext

    obj = _objective(nets, mimic=mode)
    obj.model.eval()
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    masks = (images[:, :1] > 0).float()
    _, terms = obj(images, masks, StepContext(epoch=0, progress=0.0, generator=torch.Generator()))
    with torch.no_grad():
        _, s_skips, _ = obj.model(images, return_features=True)
        _, t_skips, _ = obj.teacher(images, return_features=True)
        want = feature_mimic(s_skips, t_skips, obj.adapters, mode)
    assert float(terms["mimic"]) == pytest.approx(float(want), rel=1e-5)
    other = feature_mimic(s_skips, t_skips, obj.adapters, "attention" if mode == "channel_norm" else mode)
    assert mode == "attention" or float(other) != pytest.approx(float(want), rel=1e-3)


@pytest.mark.parametrize("lambda_l2, has_l2", [(0.0, False), (1e-5, True)])
def test_the_l2_term_is_added_only_when_weighted(nets, lambda_l2, has_l2):
    from microaunet_cli.training.objectives import StepContext

    obj = _objective(nets, epochs=2, imitation_fraction=0.5, lambda_l2=lambda_l2)  # stage 2: epoch 1
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    masks = (images[:, :1] > 0).float()
    _, terms = obj(images, masks, StepContext(epoch=1, progress=1.0, generator=torch.Generator()))
    assert ("l2" in terms) is has_l2 and "infonce" in terms


def test_logits_of_exactly_zero_are_background(nets, monkeypatch):
    seen = {}
    monkeypatch.setattr(distillation, "pixel_infonce", lambda *a, **kw: seen.update(kw) or torch.tensor(0.0))
    masks = torch.zeros(1, 1, 2, 2)
    masks[0, 0, 0, 0] = 1
    zero = torch.zeros(1, 1, 2, 2)  # probability exactly 0.5: not polyp
    _objective(nets)._contrastive(zero, torch.randn(1, 8, 2, 2), zero, torch.randn(1, 32, 2, 2), masks, None)
    assert seen["student_wrong"].tolist() == [[[True, False], [False, False]]]
    assert seen["teacher_right"].tolist() == [[[False, True], [True, True]]]
