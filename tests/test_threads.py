"""``--threads``: every CPU command applies it to torch before computing, and logs the count at start."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import make_checkpoint
from typer.testing import CliRunner

from microaunet_cli import cpu_threads
from microaunet_cli.cli.app import app
from microaunet_cli.data import PrepareSettings, prepare_dataset
from microaunet_cli.evaluation import evaluate
from microaunet_cli.inference import predict
from microaunet_cli.inference import video as video_pipeline


@pytest.fixture
def threads() -> int:
    """A count different from the one torch starts with, restored afterwards (it is process-wide)."""
    original = torch.get_num_threads()
    yield original + 1
    torch.set_num_threads(original)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "synthetic"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=out, size=64, synthetic_count=24, workers=1))
    return out


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_inference_commands_run_with_the_requested_threads(command, threads, prepared, tmp_path, monkeypatch):
    ckpt = make_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", prepared_dir=prepared)
    # The commands import their library function when they run: patched where it is defined.
    module, name = (evaluate, "evaluate_checkpoint") if command == "evaluate" else (predict, "predict")
    real, seen = getattr(module, name), []

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    if command == "evaluate":
        args = ["evaluate", "--ckpt", str(ckpt), "--out", str(tmp_path / "eval"), "--worst", "0"]
    else:
        images = tmp_path / "images"
        images.mkdir()
        cv2.imwrite(str(images / "a.png"), np.zeros((70, 50, 3), np.uint8))
        args = ["predict", "--ckpt", str(ckpt), "--input", str(images), "--out", str(tmp_path / "pred")]
    output = _invoke([*args, "--device", "cpu", "--threads", str(threads)])
    assert seen == [threads]
    assert f"CPU threads: {threads} (--threads)" in output


@pytest.mark.parametrize("command", ["train-teacher", "distill"])
def test_training_commands_run_with_the_requested_threads(command, threads, prepared, tmp_path):
    runs = tmp_path / "runs"
    common = [
        "--data-dir",
        str(prepared),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--set",
        f"output.runs_dir={runs}",
    ]
    if command == "distill":
        teacher = make_checkpoint(tmp_path / "teacher.pt", prepared_dir=prepared)
        common += ["--teacher", str(teacher)]
    output = _invoke([command, *common, "--threads", str(threads)])
    assert f"CPU threads: {threads} (--threads)" in output
    run = next(runs.iterdir())
    # env.json records torch's count as the run saw it, after the runtime was set up.
    assert json.loads((run / "env.json").read_text())["cpu_threads"] == threads


@pytest.mark.parametrize("given", [None, "--threads"])
def test_videos_leave_a_core_each_to_reader_and_writer_unless_told(
    given, threads, prepared, tmp_path, monkeypatch
):
    """Unset, the network of a video run gets the cores less two (at least one): on 2 cores, torch's
    2 threads waited for the cores the reader and writer hold. --threads still decides when given."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    # A count torch does not start with, so the test sees who set it.
    monkeypatch.setattr(cpu_threads, "video_threads", lambda: threads + 1)
    ckpt = make_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", prepared_dir=prepared)
    real, seen = video_pipeline.predict_video_source, []

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(video_pipeline, "predict_video_source", spy)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (48, 40))
    for i in range(3):
        writer.write(np.full((40, 48, 3), 40 * i, np.uint8))
    writer.release()
    args = ["predict", "--ckpt", str(ckpt), "--input", str(video), "--out", str(tmp_path / "out")]
    output = _invoke([*args, "--device", "cpu"] + (["--threads", str(threads)] if given else []))
    assert seen == [threads if given else threads + 1]
    assert ("(--threads)" in output) == bool(given)


def test_video_threads_are_the_cores_less_reader_and_writer(monkeypatch):
    from microaunet_cli.cpu_threads import video_threads

    for cores, expected in ((1, 1), (2, 1), (3, 1), (4, 2), (16, 14)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cores: set(range(n)))
        assert video_threads() == expected
