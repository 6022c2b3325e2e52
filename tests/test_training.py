"""The training core on a tiny synthetic set: files written, loss falls, resume is exact,
pre-emption is safe, bad options are clear, distillation leaves the teacher untouched."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from microaunet_cli.config import RunSettings, load_settings
from microaunet_cli.data import PrepareSettings, open_prepared, prepare_dataset
from microaunet_cli.errors import CheckpointError, ConfigError, DataError, TrainingError
from microaunet_cli.training import progress as progress_mod
from microaunet_cli.training.checkpoint import load_checkpoint
from microaunet_cli.training.runner import distill, train_teacher

SIZE = 64


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "synthetic"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=out, size=SIZE, synthetic_count=40, workers=1))
    return out


def settings_for(prepared: Path, runs: Path, *sets: str, model: str = "malunet") -> RunSettings:
    base = [f"data.prepared_dir={prepared}", f"output.runs_dir={runs}", f"model.name={model}",
            "train.epochs=3", "train.batch_size=8", "train.eval_batch_size=16", "output.quiet=true"]
    return load_settings(RunSettings, sets=[*base, *sets], environ={})


def test_train_teacher_lowers_loss_and_writes_every_file(prepared, tmp_path):
    summary = train_teacher(settings_for(prepared, tmp_path))
    run = tmp_path / "synthetic-malunet"
    for name in ("config.yaml", "env.json", "metrics.jsonl", "metrics.csv", "progress.png", "summary.json",
                 "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert all(0 <= r["val_mdice"] <= 1 for r in rows)
    assert summary["status"] == "completed" and summary["params"] == 177_943
    assert set(summary["test"]) == {"test"} and summary["test"]["test"]["n_images"] > 0
    env = json.loads((run / "env.json").read_text())
    assert env["torch"] == torch.__version__ and "command_line" in env
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["epoch"] == summary["best_epoch"]
    assert ckpt["settings"]["model"]["name"] == "malunet" and ckpt["size"] == SIZE
    assert len(ckpt["normalization"]["mean"]) == 3


def test_kfold_run_normalises_with_its_training_folds_only(tmp_path):
    out = tmp_path / "kfold"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=out, size=32, synthetic_count=20, split="kfold",
                                    folds=4, workers=1))
    settings = settings_for(out, tmp_path / "runs", "data.fold=2", "train.epochs=1", "model.name=microaunet_fast")
    train_teacher(settings)
    ckpt = load_checkpoint(tmp_path / "runs" / "synthetic-microaunet_fast" / "checkpoints" / "last.pt")
    mean, std = open_prepared(out).normalization(2)
    assert ckpt["normalization"] == {"mean": list(mean), "std": list(std)}
    assert list(mean) != open_prepared(out).manifest["mean"]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_two_epochs_plus_resume_equals_four_straight(prepared, tmp_path):
    common = ("train.deterministic=true", "schedule.t_max=4")
    train_teacher(settings_for(prepared, tmp_path / "a", "train.epochs=4", *common))
    train_teacher(settings_for(prepared, tmp_path / "b", "train.epochs=2", *common))
    train_teacher(settings_for(prepared, tmp_path / "b", "train.epochs=4", *common), resume=True)
    a = _weights(tmp_path / "a" / "synthetic-malunet" / "checkpoints" / "last.pt")
    b = _weights(tmp_path / "b" / "synthetic-malunet" / "checkpoints" / "last.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = (tmp_path / "b" / "synthetic-malunet" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3, 4]


def test_sigterm_mid_epoch_saves_and_resume_matches(prepared, tmp_path, monkeypatch):
    sets = ("train.deterministic=true", "train.epochs=2")
    train_teacher(settings_for(prepared, tmp_path / "straight", *sets))

    real_step = progress_mod.TrainingProgress.step
    calls = {"n": 0}

    def step_then_signal(self, loss, lr):
        real_step(self, loss, lr)
        calls["n"] += 1
        if calls["n"] == 5:  # in the middle of the second epoch (4 batches per epoch)
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(progress_mod.TrainingProgress, "step", step_then_signal)
    summary = train_teacher(settings_for(prepared, tmp_path / "cut", *sets))
    assert summary["status"] == "preempted"
    last = load_checkpoint(tmp_path / "cut" / "synthetic-malunet" / "checkpoints" / "last.pt")
    assert (last["epoch"], last["step_in_epoch"]) == (1, 1)
    monkeypatch.setattr(progress_mod.TrainingProgress, "step", real_step)
    resumed = train_teacher(settings_for(prepared, tmp_path / "cut", *sets), resume=True)
    assert resumed["status"] == "completed"
    a = _weights(tmp_path / "straight" / "synthetic-malunet" / "checkpoints" / "last.pt")
    b = _weights(tmp_path / "cut" / "synthetic-malunet" / "checkpoints" / "last.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # The cut epoch's logged losses cover the batches before the signal too (throughput is timing).
    assert _history(tmp_path / "cut") == _history(tmp_path / "straight")


def _history(runs: Path) -> list[dict]:
    rows = (runs / "synthetic-malunet" / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(row).items() if k != "train_images_per_s"} for row in rows]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(prepared, tmp_path, monkeypatch):
    from microaunet_cli.training import objectives

    real_forward = objectives.SegmentationObjective.forward

    def poisoned(self, images, masks, ctx):
        loss, terms = real_forward(self, images, masks, ctx)
        return (loss * float("nan"), terms) if ctx.epoch == 1 else (loss, terms)

    monkeypatch.setattr(objectives.SegmentationObjective, "forward", poisoned)
    with pytest.raises(TrainingError, match="nan at epoch 2.*last.pt"):
        train_teacher(settings_for(prepared, tmp_path))
    last = load_checkpoint(tmp_path / "synthetic-malunet" / "checkpoints" / "last.pt")
    assert last["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


def test_existing_run_needs_resume_or_overwrite(prepared, tmp_path):
    train_teacher(settings_for(prepared, tmp_path, "train.epochs=1"))
    with pytest.raises(ConfigError, match="--resume.*--overwrite"):
        train_teacher(settings_for(prepared, tmp_path, "train.epochs=1"))
    train_teacher(settings_for(prepared, tmp_path, "train.epochs=1", "output.overwrite=true"))


def test_missing_prepared_data_says_how_to_prepare(tmp_path):
    with pytest.raises(DataError, match="prepare-data"):
        train_teacher(settings_for(tmp_path / "nothing", tmp_path))


def test_size_mismatch_and_fp16_on_cpu_are_clear(prepared, tmp_path):
    with pytest.raises(ConfigError, match="prepared at 64"):
        train_teacher(settings_for(prepared, tmp_path, "data.size=128"))
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        train_teacher(settings_for(prepared, tmp_path, "train.amp=fp16", "train.device=cpu"))


def test_distill_needs_a_teacher(prepared, tmp_path):
    with pytest.raises(CheckpointError, match="train-teacher --dataset synthetic"):
        distill(settings_for(prepared, tmp_path, model="microaunet"))


def test_distill_trains_student_and_leaves_teacher_untouched(prepared, tmp_path):
    train_teacher(settings_for(prepared, tmp_path, "train.epochs=2"))
    teacher_path = tmp_path / "synthetic-malunet" / "checkpoints" / "best.pt"
    before = _weights(teacher_path)
    summary = distill(settings_for(prepared, tmp_path, "train.epochs=5", model="microaunet"))
    assert summary["teacher"]["checksum"] == summary["teacher"]["checksum_after"]
    after = _weights(teacher_path)
    assert all(torch.equal(before[k], after[k]) for k in before)
    run = tmp_path / "synthetic-microaunet-distill"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == [1, 1, 1, 2, 2]
    assert all(r["train_kl"] > 0 and r["train_mimic"] > 0 for r in rows[:3])
    assert all(r["train_infonce"] > 0 for r in rows[3:])
    student = load_checkpoint(run / "checkpoints" / "best.pt")
    assert student["kind"] == "student"
    # The saved network is the student alone; projection heads live only in the training state.
    assert not any(k.startswith(("student_head", "teacher_head")) for k in student["model"])
    assert sum(v.numel() for v in student["model"].values() if v.is_floating_point()) > 0


def test_distill_rejects_teacher_of_other_size(prepared, tmp_path):
    train_teacher(settings_for(prepared, tmp_path, "train.epochs=1"))
    ckpt_path = tmp_path / "synthetic-malunet" / "checkpoints" / "best.pt"
    ckpt = load_checkpoint(ckpt_path)
    ckpt["size"] = 256
    torch.save(ckpt, ckpt_path)
    with pytest.raises(CheckpointError, match="input size is 256"):
        distill(settings_for(prepared, tmp_path, model="microaunet"))


def test_two_process_torchrun_matches_single_process_evaluation(prepared, tmp_path):
    """DDP on CPU (gloo): each rank trains on a shard; the metrics it gathers equal one process
    evaluating the same checkpoint (no duplicated or missing samples)."""
    import subprocess
    import sys

    from typer.testing import CliRunner

    from microaunet_cli.cli.app import app

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           "-m", "microaunet_cli", "train-teacher", "--data-dir", str(prepared), "--epochs", "2",
           "--batch-size", "8", "--quiet", "--set", f"output.runs_dir={tmp_path}", "--set", "train.num_threads=1"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "synthetic-malunet"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2
    ddp = summary["test"]["test"]
    result = CliRunner().invoke(app, ["evaluate", "--ckpt", str(run / "checkpoints" / "best.pt"),
                                      "--data-dir", str(prepared), "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    single = json.loads((tmp_path / "eval" / "summary.json").read_text())["splits"]["test"]
    assert ddp["n_images"] == single["n_images"] > 0
    for convention in ("per_image", "pooled"):
        for key, value in single[convention].items():
            assert ddp[convention][key] == pytest.approx(value, abs=1e-6), (convention, key)


def test_distill_resumed_inside_stage_two_stays_in_stage_two(prepared, tmp_path, monkeypatch):
    train_teacher(settings_for(prepared, tmp_path, "train.epochs=1"))
    real_step = progress_mod.TrainingProgress.step
    calls = {"n": 0}

    def step_then_signal(self, loss, lr):
        real_step(self, loss, lr)
        calls["n"] += 1
        if calls["n"] == 14:  # second batch of epoch 4, the first epoch of stage 2 (4 batches/epoch)
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(progress_mod.TrainingProgress, "step", step_then_signal)
    cut = distill(settings_for(prepared, tmp_path, "train.epochs=5", model="microaunet"))
    assert cut["status"] == "preempted"
    last = load_checkpoint(tmp_path / "synthetic-microaunet-distill" / "checkpoints" / "last.pt")
    assert (last["epoch"], last["step_in_epoch"]) == (3, 2)
    monkeypatch.setattr(progress_mod.TrainingProgress, "step", real_step)
    done = distill(settings_for(prepared, tmp_path, "train.epochs=5", model="microaunet"), resume=True)
    assert done["status"] == "completed"
    rows = [json.loads(line) for line in
            (tmp_path / "synthetic-microaunet-distill" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == [1, 1, 1, 2, 2]
    assert "train_infonce" in rows[3] and "train_kl" not in rows[3]
