"""A stop must stop: train-teacher / distill stopped by a signal save last.pt, say how to continue, mark
their summary interrupted and exit with 128 + the signal's number, never 0."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from helpers import make_checkpoint
from typer.testing import CliRunner

from microaunet_cli.checkpoints import load_checkpoint
from microaunet_cli.cli.app import app
from microaunet_cli.data import PrepareSettings, prepare_dataset
from microaunet_cli.training import progress as progress_mod


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "synthetic"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=out, size=64, synthetic_count=40, workers=1))
    return out


def _signal_at_step(monkeypatch, signum: int, at: int, times: int = 1) -> None:
    """Send ``signum`` to this process ``times`` times after training batch ``at`` (counted from 1)."""
    real_step = progress_mod.TrainingProgress.step
    calls = {"n": 0}

    def step_then_signal(self, loss, lr):
        real_step(self, loss, lr)
        calls["n"] += 1
        if calls["n"] == at:
            for _ in range(times):
                os.kill(os.getpid(), signum)

    monkeypatch.setattr(progress_mod.TrainingProgress, "step", step_then_signal)


def _train_args(command: str, prepared: Path, runs: Path, epochs: int) -> list[str]:
    """A small CPU run of ``command`` on the prepared set, its run folder under ``runs``."""
    return [
        command,
        "--data-dir",
        str(prepared),
        "--epochs",
        str(epochs),
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--set",
        f"output.runs_dir={runs}",
    ]


@pytest.mark.parametrize(
    ("command", "signum"),
    [("train-teacher", signal.SIGTERM), ("distill", signal.SIGINT), ("train-teacher", signal.SIGUSR1)],
)
def test_stopped_training_saves_exits_non_zero_and_says_so(command, signum, prepared, tmp_path, monkeypatch):
    args = _train_args(command, prepared, tmp_path, epochs=3)
    if command == "distill":
        args += ["--teacher", str(make_checkpoint(tmp_path / "teacher.pt", prepared_dir=prepared))]
    _signal_at_step(monkeypatch, signum, 6)  # the second batch of epoch 2 (4 batches an epoch)
    result = CliRunner().invoke(app, args)
    name = signal.Signals(signum).name
    assert result.exit_code == 128 + signum, result.output
    assert f"stopped by {name} at epoch 1/3" in result.output and "--resume" in result.output
    run = next(p for p in tmp_path.iterdir() if p.is_dir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["stopped_by"] == name and "test" not in summary
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (last["epoch"], last["step_in_epoch"]) == (1, 2)


def test_second_ctrl_c_stops_at_once_without_saving(prepared, tmp_path, monkeypatch):
    _signal_at_step(monkeypatch, signal.SIGINT, 6, times=2)  # Ctrl-C twice in the same batch
    result = CliRunner().invoke(app, _train_args("train-teacher", prepared, tmp_path, epochs=3))
    assert result.exit_code == 130 and "interrupted" in result.output
    run = tmp_path / "synthetic-malunet"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step_in_epoch"] == 0  # the end of epoch 1 only
    assert not (run / "summary.json").exists()


def test_completed_run_is_not_marked_interrupted(prepared, tmp_path):
    result = CliRunner().invoke(app, [*_train_args("train-teacher", prepared, tmp_path, epochs=1), "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "synthetic-malunet" / "summary.json").read_text())
    assert summary["interrupted"] is False and summary["stopped_by"] is None
