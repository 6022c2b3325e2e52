"""Bad input to the newer features, through the command line: each gets one error line naming the
culprit and the fix, exit status 2, no traceback. Teacher files for distill, export options, external
folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import make_checkpoint
from typer.testing import CliRunner

from microaunet_cli.cli.app import app
from microaunet_cli.data import PrepareSettings, prepare_dataset

runner = CliRunner()


def refused(args: list[str]) -> str:
    """The one-line error of a command that must refuse ``args``, whitespace-normalised."""
    result = runner.invoke(app, args, terminal_width=400)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project")
    prepare_dataset(
        PrepareSettings(dataset="synthetic", out=root / "data", size=32, synthetic_count=12, workers=1)
    )
    make_checkpoint(
        root / "teacher" / "checkpoints" / "best.pt", "malunet", size=32, prepared_dir=root / "data"
    )
    make_checkpoint(root / "student.pt", "microaunet_rt", size=32, prepared_dir=root / "data", kind="student")
    return root


def _distill(project: Path, teacher: Path) -> list[str]:
    return [
        *("distill", "--dataset", "synthetic", "--data-dir", str(project / "data"), "--epochs", "1"),
        *("--device", "cpu", "--quiet", "--set", f"output.runs_dir={project / 'runs'}"),
        *("--teacher", str(teacher)),
    ]


def test_distill_teacher_missing(project):
    text = refused(_distill(project, project / "nowhere.pt"))
    assert "nowhere.pt" in text and "train-teacher" in text


def test_distill_teacher_a_folder_points_to_the_checkpoint_inside(project):
    text = refused(_distill(project, project / "teacher"))
    assert f"{project / 'teacher'} is a folder" in text
    assert str(project / "teacher" / "checkpoints" / "best.pt") in text


def test_distill_teacher_not_a_checkpoint(project, tmp_path):
    text_file = tmp_path / "notes.pt"
    text_file.write_text("not a checkpoint\n")
    text = refused(_distill(project, text_file))
    assert "notes.pt cannot be read" in text and "not a microaunet checkpoint" in text
    assert "weights_only" not in text  # torch's advice to load untrusted pickles is not ours to give


def test_distill_teacher_truncated(project, tmp_path):
    whole = project / "teacher" / "checkpoints" / "best.pt"
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    text = refused(_distill(project, cut))
    assert "cut.pt cannot be read" in text and "truncated" in text


def test_distill_teacher_a_torch_file_of_something_else(project, tmp_path):
    other = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(2, 2)}, other)
    text = refused(_distill(project, other))
    assert "weights.pt is not a microaunet checkpoint" in text


def test_distill_teacher_a_student_checkpoint(project):
    text = refused(_distill(project, project / "student.pt"))
    assert "student.pt" in text and "student network, not a teacher" in text and "--allow-any-teacher" in text


def test_export_out_an_existing_folder(project, tmp_path):
    text = refused(["export", "--ckpt", str(project / "student.pt"), "--out", str(tmp_path)])
    assert f"--out {tmp_path} is a folder" in text and f"--out {tmp_path / 'student.onnx'}" in text


def test_export_int8_with_another_format_names_the_options(project):
    text = refused(["export", "--ckpt", str(project / "student.pt"), "--int8", "--format", "torchscript"])
    assert "'int8'" in text and "--format onnx" in text
    assert "PosixPath" not in text  # the settings themselves are not dumped into the message


def test_export_ckpt_a_folder(project):
    text = refused(["export", "--ckpt", str(project / "teacher")])
    assert "is a folder" in text and "checkpoints/best.pt" in text


def _evaluate_external(project: Path, folder: Path) -> list[str]:
    return ["evaluate", "--ckpt", str(project / "student.pt"), "--device", "cpu", "--external", str(folder)]


def test_external_a_file_not_a_folder(project, tmp_path):
    file = tmp_path / "images.zip"
    file.write_bytes(b"PK")
    text = refused(_evaluate_external(project, file))
    assert "images.zip is a file, not a folder" in text and "unpack" in text


def test_external_images_without_masks(project, tmp_path):
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((20, 20, 3), np.uint8))
    text = refused(_evaluate_external(project, tmp_path))
    assert "has images/ but no masks/" in text


def test_external_masks_without_any_matching_image(project, tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((20, 20, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "masks" / "b.png"), np.zeros((20, 20), np.uint8))
    text = refused(_evaluate_external(project, tmp_path))
    assert str(tmp_path) in text and ("no labelled images" in text or "a.png" in text)
