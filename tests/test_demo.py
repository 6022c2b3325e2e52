"""The README's first command, end to end at toy scale: every step runs and the table has both rows.
A stop signal stops it after the step in progress, with a status a script can tell from success."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from microaunet_cli.checkpoints import load_checkpoint
from microaunet_cli.cli.app import app
from microaunet_cli.training import progress as progress_mod

TINY = [
    "--quiet",
    "--set",
    "count=24",
    "--set",
    "size=64",
    "--set",
    "bench_size=64",
    "--set",
    "bench_repeats=2",
]


@pytest.fixture
def threads() -> int:
    """A thread count different from torch's current one, restored afterwards (it is process-wide)."""
    original = torch.get_num_threads()
    yield original + 1
    torch.set_num_threads(original)


def test_demo_runs_the_whole_workflow(tmp_path, threads):
    result = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path), "--epochs", "1", "--threads", str(threads), *TINY]
    )
    assert result.exit_code == 0, result.output
    assert "teacher" in result.output and "student" in result.output and "177,943" in result.output
    assert (tmp_path / "runs" / "synthetic-malunet" / "checkpoints" / "best.pt").is_file()
    assert (tmp_path / "runs" / "synthetic-microaunet_rt-distill" / "checkpoints" / "best.pt").is_file()
    bench = json.loads((tmp_path / "benchmark.json").read_text())
    assert [m["params_total"] for m in bench["models"]] == [177_943, 87_987]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is False and len(summary["rows"]) == 2
    assert summary["steps_done"] == ["prepare-data", "train-teacher", "distill", "evaluate", "benchmark"]
    # --threads reaches every step: the training runs and the benchmark record torch's count.
    assert bench["environment"]["cpu_threads"] == threads
    for run in ("synthetic-malunet", "synthetic-microaunet_rt-distill"):
        assert json.loads((tmp_path / "runs" / run / "env.json").read_text())["cpu_threads"] == threads


def _demo_process(out: Path, student_epochs: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "microaunet_cli",
        "demo",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--set",
        "teacher_epochs=1",
        "--set",
        f"student_epochs={student_epochs}",
        *TINY,
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_sigterm_during_distillation_stops_the_demo_there(tmp_path):
    """SIGTERM mid-distillation: the student's last.pt is saved, nothing is evaluated or compared, the
    exit status is 143 (128 + SIGTERM) and both summaries say the run was interrupted."""
    student_run = tmp_path / "runs" / "synthetic-microaunet_rt-distill"
    proc = _demo_process(tmp_path, student_epochs=500)  # far more epochs than the signal leaves it
    deadline = time.monotonic() + 300
    while not (student_run / "checkpoints" / "last.pt").exists():  # distillation has done an epoch
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "interrupted by SIGTERM during step 3/5 distill" in stderr and "microaunet demo --resume" in stderr
    assert "Teacher vs distilled student" not in stdout  # no comparison table
    assert not (tmp_path / "benchmark.json").exists() and not (student_run / "eval-test").exists()
    demo = json.loads((tmp_path / "summary.json").read_text())
    assert demo["interrupted"] is True and demo["stopped_by"] == "SIGTERM" and demo["rows"] == []
    assert demo["steps_done"] == ["prepare-data", "train-teacher"]
    student = json.loads((student_run / "summary.json").read_text())
    assert student["interrupted"] is True and student["status"] == "preempted" and "test" not in student
    assert 1 <= student["epochs_done"] < 500
    assert load_checkpoint(student_run / "checkpoints" / "last.pt")["epoch"] == student["epochs_done"]


def test_interrupted_demo_resumes_where_it_stopped(tmp_path, monkeypatch):
    """Ctrl-C in the distillation's first epoch; --resume then continues the student from its last.pt
    (the teacher is not trained again) and ends with the table."""
    real_step = progress_mod.TrainingProgress.step
    calls = {"n": 0}

    def step_then_signal(self, loss, lr):
        real_step(self, loss, lr)
        calls["n"] += 1
        if (
            calls["n"] == 5
        ):  # 17 training images, 3 batches: the teacher's epoch, then the student's 2nd batch
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(progress_mod.TrainingProgress, "step", step_then_signal)
    args = [
        "demo",
        "--out",
        str(tmp_path),
        "--device",
        "cpu",
        "--set",
        "teacher_epochs=1",
        "--set",
        "student_epochs=2",
        "--set",
        "batch_size=8",
        *TINY,
    ]
    cut = CliRunner().invoke(app, args)
    assert cut.exit_code == 130, cut.output  # 128 + SIGINT
    assert "during step 3/5 distill" in cut.output and "no comparison table" in cut.output
    student_last = tmp_path / "runs" / "synthetic-microaunet_rt-distill" / "checkpoints" / "last.pt"
    teacher_last = tmp_path / "runs" / "synthetic-malunet" / "checkpoints" / "last.pt"
    assert (load_checkpoint(student_last)["epoch"], load_checkpoint(student_last)["step_in_epoch"]) == (0, 2)
    teacher_bytes = teacher_last.read_bytes()
    monkeypatch.setattr(progress_mod.TrainingProgress, "step", real_step)
    done = CliRunner().invoke(app, [*args, "--resume"])
    assert done.exit_code == 0, done.output
    assert "Teacher vs distilled student" in done.output
    assert load_checkpoint(student_last)["epoch"] == 2 and teacher_last.read_bytes() == teacher_bytes
    assert json.loads((tmp_path / "summary.json").read_text())["interrupted"] is False
