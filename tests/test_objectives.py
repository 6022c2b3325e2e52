"""What the loop and the runner ask of an objective instead of testing which objective it is."""

from __future__ import annotations

import pytest
import torch

from microaunet_cli.config import DistillSettings, RunSettings
from microaunet_cli.models import create_model
from microaunet_cli.training.distillation import DistillationObjective, state_checksum
from microaunet_cli.training.objectives import SegmentationObjective
from microaunet_cli.training.runner import default_run_name


def _distillation() -> DistillationObjective:
    teacher = create_model("malunet")
    info = {"path": "teacher.pt", "checksum": state_checksum(teacher)}
    return DistillationObjective(
        create_model("microaunet"), teacher, DistillSettings(), epochs=4, teacher_info=info
    )


def test_each_objective_states_what_differs():
    supervised, distilled = SegmentationObjective(create_model("microaunet")), _distillation()
    assert (supervised.find_unused_parameters, distilled.find_unused_parameters) == (False, True)
    assert supervised.checkpoint_extras() == {}
    assert distilled.checkpoint_extras()["teacher"]["path"] == "teacher.pt"
    settings = RunSettings.model_validate({"model": {"name": "microaunet"}, "data": {"dataset": "kvasir"}})
    assert default_run_name(settings, "supervised") == "kvasir-microaunet"
    assert default_run_name(settings, "distilled") == "kvasir-microaunet-distill"


def test_distillation_after_run_records_the_checksum_and_refuses_a_changed_teacher():
    objective = _distillation()
    summary = {"teacher": objective.checkpoint_extras()["teacher"]}
    objective.after_run(summary)
    assert summary["teacher"]["checksum_after"] == summary["teacher"]["checksum"]
    with torch.no_grad():
        next(objective.teacher.parameters()).add_(1.0)
    with pytest.raises(RuntimeError, match="teacher's weights changed"):
        objective.after_run({"teacher": {}})
