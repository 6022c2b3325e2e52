"""The training core on a tiny synthetic set: files written, loss falls, resume is exact,
pre-emption is safe, bad options are clear, distillation leaves the teacher untouched."""

from __future__ import annotations

import itertools
import json
import os
import signal
from pathlib import Path

import pytest
import torch

from microaunet_cli.checkpoints import load_checkpoint, load_trained
from microaunet_cli.config import RunSettings, load_settings
from microaunet_cli.data import PrepareSettings, open_prepared, prepare_dataset
from microaunet_cli.environment import describe_environment
from microaunet_cli.errors import CheckpointError, ConfigError, DataError, TrainingError
from microaunet_cli.models import create_model
from microaunet_cli.training import progress as progress_mod
from microaunet_cli.training.distillation import state_checksum
from microaunet_cli.training.runner import distill, train_teacher

SIZE = 64


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "synthetic"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=out, size=SIZE, synthetic_count=40, workers=1))
    return out


def settings_for(prepared: Path, runs: Path, *sets: str, model: str = "malunet") -> RunSettings:
    base = [
        f"data.prepared_dir={prepared}",
        f"output.runs_dir={runs}",
        f"model.name={model}",
        "train.epochs=3",
        "train.batch_size=8",
        "train.eval_batch_size=16",
        "output.quiet=true",
    ]
    return load_settings(RunSettings, sets=[*base, *sets], environ={})


def test_train_teacher_lowers_loss_and_writes_every_file(prepared, tmp_path):
    summary = train_teacher(settings_for(prepared, tmp_path))
    run = tmp_path / "synthetic-malunet"
    for name in (
        "config.yaml",
        "env.json",
        "metrics.jsonl",
        "metrics.csv",
        "progress.png",
        "summary.json",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    # best.pt is the epoch with the highest validation mDice, and the summary says so.
    best = max(rows, key=lambda r: r["val_mdice"])
    assert summary.best_epoch == best["epoch"] and summary.best_val_mdice == pytest.approx(best["val_mdice"])
    assert summary.status == "completed" and summary.params == 177_943
    assert set(summary.test) == {"test"} and summary.test["test"]["n_images"] > 0
    env = json.loads((run / "env.json").read_text())
    assert env["torch_version"] == torch.__version__ and "command_line" in env and env["world_size"] == 1
    # The benchmark report describes its environment with the same function, hence the same keys.
    assert set(describe_environment(torch.device("cpu"))) <= set(env)
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["epoch"] == summary.best_epoch
    assert ckpt["settings"]["model"]["name"] == "malunet" and ckpt["size"] == SIZE
    assert len(ckpt["normalization"]["mean"]) == 3


def test_kfold_run_normalises_with_its_training_folds_only(tmp_path):
    out = tmp_path / "kfold"
    prepare_dataset(
        PrepareSettings(
            dataset="synthetic", out=out, size=32, synthetic_count=20, split="kfold", folds=4, workers=1
        )
    )
    settings = settings_for(
        out, tmp_path / "runs", "data.fold=2", "train.epochs=1", "model.name=microaunet_fast"
    )
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
    assert summary.status == "preempted"
    last = load_checkpoint(tmp_path / "cut" / "synthetic-malunet" / "checkpoints" / "last.pt")
    assert (last["epoch"], last["step_in_epoch"]) == (1, 1)
    monkeypatch.setattr(progress_mod.TrainingProgress, "step", real_step)
    resumed = train_teacher(settings_for(prepared, tmp_path / "cut", *sets), resume=True)
    assert resumed.status == "completed"
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
    summary = distill(settings_for(prepared, tmp_path, "train.epochs=5", model="microaunet"))
    # The run distilled from the teacher in the file, and it was the same network at the end.
    from_file = state_checksum(load_trained(teacher_path).network)
    assert summary.teacher["checksum"] == from_file == summary.teacher["checksum_after"]
    run = tmp_path / "synthetic-microaunet-distill"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == [1, 1, 1, 2, 2]
    assert all(r["train_kl"] > 0 and r["train_mimic"] > 0 for r in rows[:3])
    assert all(r["train_infonce"] > 0 for r in rows[3:])
    student = load_checkpoint(run / "checkpoints" / "best.pt")
    assert (student["role"], student["training"]) == ("student", "distilled")
    assert (summary.role, summary.training) == ("student", "distilled")
    # The saved network is the student alone, with every key of the network and nothing else
    # (projection heads and adapters live only in the training state), and it was trained.
    fresh = create_model("microaunet").state_dict()
    assert set(student["model"]) == set(fresh)
    assert any(not torch.equal(student["model"][k], v) for k, v in fresh.items() if k.endswith("weight"))


def test_distill_takes_a_shipped_teacher_by_name(prepared, tmp_path):
    """--teacher malunet-polyp is the shipped file (here on other data, so the mismatch is allowed);
    an unknown name is refused with the shipped names listed."""
    sets = ("train.epochs=1", "distill.allow_teacher_mismatch=true")
    summary = distill(
        settings_for(prepared, tmp_path, *sets, "distill.teacher=malunet-polyp", model="microaunet")
    )
    assert summary.teacher["checksum"] == state_checksum(load_trained("malunet-polyp").network)
    listed = "shipped name: malunet-polyp, malunet-polyp-full, microaunet_rt-polyp, microaunet_rt-polyp-full"
    with pytest.raises(CheckpointError, match=listed):
        distill(
            settings_for(prepared, tmp_path / "b", *sets, "distill.teacher=malunet-nope", model="microaunet")
        )


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

    # A network with BatchNorm: each rank's last training step leaves it its own running statistics,
    # so the ranks must score with the ones the checkpoint holds (rank 0's).
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        "-m",
        "microaunet_cli",
        "train-teacher",
        "--data-dir",
        str(prepared),
        "--epochs",
        "2",
        "--model",
        "microaunet",
        "--batch-size",
        "8",
        "--quiet",
        "--set",
        f"output.runs_dir={tmp_path}",
        "--set",
        "train.num_threads=1",
    ]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "synthetic-microaunet"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2
    # Test scores of best.pt, and the last epoch's validation scores (kept in last.pt).
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    for ckpt, split, ddp in (
        ("best.pt", "test", summary["test"]["test"]),
        ("last.pt", "val", last["metrics"]),
    ):
        out = tmp_path / f"eval-{split}"
        result = CliRunner().invoke(
            app,
            [
                "evaluate",
                "--ckpt",
                str(run / "checkpoints" / ckpt),
                "--split",
                split,
                "--data-dir",
                str(prepared),
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        single = json.loads((out / "summary.json").read_text())["splits"][split]
        # Validation scores the training-size masks; evaluate keeps those under "resized".
        single = single if split == "test" else single["resized"]
        assert ddp["n_images"] == single["n_images"] > 0
        # Pooled scores count pixels: one pixel whose probability sits within rounding of the threshold
        # can flip between the ranks' thread count and this process's (seen: 2e-6 of pooled accuracy);
        # a duplicated or dropped image would move them by orders of magnitude more.
        for convention, tolerance in (("per_image", 1e-6), ("pooled", 1e-5)):
            for key, value in single[convention].items():
                assert ddp[convention][key] == pytest.approx(value, abs=tolerance), (split, convention, key)


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
    assert cut.status == "preempted"
    last = load_checkpoint(tmp_path / "synthetic-microaunet-distill" / "checkpoints" / "last.pt")
    assert (last["epoch"], last["step_in_epoch"]) == (3, 2)
    monkeypatch.setattr(progress_mod.TrainingProgress, "step", real_step)
    done = distill(settings_for(prepared, tmp_path, "train.epochs=5", model="microaunet"), resume=True)
    assert done.status == "completed"
    rows = [
        json.loads(line)
        for line in (tmp_path / "synthetic-microaunet-distill" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["stage"] for r in rows] == [1, 1, 1, 2, 2]
    assert "train_infonce" in rows[3] and "train_kl" not in rows[3]


def _lrs(run: Path) -> list[float]:
    return [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_with_more_epochs_continues_the_cosine_down(prepared, tmp_path):
    """t_max unset, 2 epochs then resumed to 4: the lr falls on from epoch 2's (5.05e-4) to the floor
    at the new end; it does not wrap back to the peak (1e-3) as a restored t_max of 2 would."""
    train_teacher(settings_for(prepared, tmp_path, "train.epochs=2", model="microaunet_fast"))
    train_teacher(settings_for(prepared, tmp_path, "train.epochs=4", model="microaunet_fast"), resume=True)
    lrs = _lrs(tmp_path / "synthetic-microaunet_fast")
    peak, floor = 1e-3, 1e-5
    last = floor + (peak - floor) * 0.5  # epoch 2 of a 2-epoch cosine
    assert lrs[:2] == pytest.approx([peak, last])
    # Epochs 3 and 4: a cosine from epoch 2's lr to the floor one epoch past the end, as a fresh run has.
    assert lrs[2:] == pytest.approx([floor + (last - floor) * 0.75, floor + (last - floor) * 0.25])
    ckpt = load_checkpoint(tmp_path / "synthetic-microaunet_fast" / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 4


def test_distill_resumed_with_more_epochs_never_leaves_stage_two(prepared, tmp_path):
    """3 epochs (stage 1 = 2 epochs, stage 2 begun at epoch 3) raised to 6: 0.6 × 6 would put the
    boundary at 4, sending epoch 4 back to imitation; the boundary stays where stage 2 began."""
    train_teacher(settings_for(prepared, tmp_path, "train.epochs=1"))
    first = distill(settings_for(prepared, tmp_path, "train.epochs=3", model="microaunet_fast"))
    assert first.curriculum == {"stage1_epochs": 2}
    done = distill(settings_for(prepared, tmp_path, "train.epochs=6", model="microaunet_fast"), resume=True)
    rows = [
        json.loads(line)
        for line in (tmp_path / "synthetic-microaunet_fast-distill" / "metrics.jsonl")
        .read_text()
        .splitlines()
    ]
    assert [r["stage"] for r in rows] == [1, 1, 2, 2, 2, 2]
    assert done.curriculum == {"stage1_epochs": 2}
    assert load_checkpoint(tmp_path / "synthetic-microaunet_fast-distill" / "checkpoints" / "last.pt")[
        "curriculum"
    ] == {"stage1_epochs": 2}


def test_scores_are_float32_whatever_the_training_precision(prepared, tmp_path):
    """Trained under bf16 autocast, the run's test scores equal `evaluate`'s (float32) on its best.pt."""
    from microaunet_cli.evaluation.evaluate import evaluate_checkpoint

    summary = train_teacher(
        settings_for(
            prepared,
            tmp_path,
            "train.epochs=1",
            "train.amp=bf16",
            "train.device=cpu",
            model="microaunet_fast",
        )
    )
    ours = summary.test["test"]
    theirs = evaluate_checkpoint(
        Path(summary.checkpoint_best), out_dir=tmp_path / "ev", worst=0, device="cpu"
    ).splits["test"]
    for convention in ("per_image", "pooled"):
        for key, value in theirs[convention].items():
            assert ours[convention][key] == pytest.approx(value, abs=1e-6), (convention, key)


def test_each_rank_draws_its_own_augmentation(prepared, tmp_path, monkeypatch):
    """Ranks hold different images at the same batch position; they must not all flip and rotate
    alike. One rank repeats its own draws exactly."""
    from microaunet_cli.training import loop as loop_mod
    from microaunet_cli.training.objectives import SegmentationObjective
    from microaunet_cli.training.progress import TrainingProgress
    from microaunet_cli.training.run_folder import RunFolder
    from microaunet_cli.training.runtime import Runtime

    class FirstBatch(Exception):
        pass

    real = loop_mod.augment_batch

    def first_augmented_masks(rank: int) -> torch.Tensor:
        settings = settings_for(prepared, tmp_path)
        rt = Runtime(torch.device("cpu"), None, rank=rank, world_size=1)  # one process, as rank `rank`
        run = loop_mod.TrainingRun(
            settings,
            SegmentationObjective(create_model("microaunet_fast")),
            open_prepared(prepared),
            rt,
            RunFolder(tmp_path / f"rank{rank}"),
        )

        def spy(images, masks, cfg, g):
            raise FirstBatch(real(images, masks, cfg, g)[1])

        monkeypatch.setattr(loop_mod, "augment_batch", spy)
        with pytest.raises(FirstBatch) as caught:
            run.train_epoch(TrainingProgress(1, 1, quiet=True))
        return caught.value.args[0]

    rank0, again, rank1 = first_augmented_masks(0), first_augmented_masks(0), first_augmented_masks(1)
    assert torch.equal(rank0, again)
    assert not torch.equal(rank0, rank1)


def test_student_trained_alone_is_recorded_as_a_supervised_student(prepared, tmp_path):
    summary = train_teacher(settings_for(prepared, tmp_path, "train.epochs=1", model="microaunet_fast"))
    assert (summary.role, summary.training) == ("student", "supervised")
    assert not hasattr(summary, "kind")
    path = tmp_path / "synthetic-microaunet_fast" / "checkpoints" / "best.pt"
    assert (load_checkpoint(path)["role"], load_checkpoint(path)["training"]) == ("student", "supervised")
    trained = load_trained(path)
    assert (trained.role, trained.training) == ("student", "supervised")


@pytest.mark.parametrize(
    "model,kind,expected",
    [
        ("malunet", "teacher", ("teacher", "supervised")),
        ("microaunet", "teacher", ("student", "supervised")),  # written by train-teacher for a student
        ("microaunet", "student", ("student", "distilled")),
    ],
)
def test_old_checkpoints_one_kind_is_read_as_role_and_training(tmp_path, model, kind, expected):
    from helpers import make_checkpoint

    path = make_checkpoint(tmp_path / "old.pt", model=model, kind=kind)
    trained = load_trained(path)
    assert (trained.role, trained.training) == expected


def test_distill_refuses_a_student_as_teacher_unless_allowed(prepared, tmp_path):
    """A student network given as teacher is refused, naming the option; allowed, the run records it,
    and the teacher's BatchNorm statistics (which a teacher in training mode would update) are intact."""
    train_teacher(
        settings_for(prepared, tmp_path, "train.epochs=1", "output.name=student-teacher", model="microaunet")
    )
    path = tmp_path / "student-teacher" / "checkpoints" / "best.pt"
    with pytest.raises(CheckpointError, match="'microaunet', a student network.*--allow-any-teacher"):
        distill(settings_for(prepared, tmp_path, f"distill.teacher={path}", model="microaunet_fast"))
    summary = distill(
        settings_for(
            prepared,
            tmp_path,
            f"distill.teacher={path}",
            "distill.allow_any_teacher=true",
            "train.epochs=2",
            model="microaunet_fast",
        )
    )
    assert summary.status == "completed"
    assert summary.teacher["role"] == "student" and summary.teacher["allow_any_teacher"] is True
    assert summary.teacher["training"] == "supervised"
    from_file = state_checksum(load_trained(path).network)
    assert summary.teacher["checksum"] == from_file == summary.teacher["checksum_after"]
    config = (tmp_path / "synthetic-microaunet_fast-distill" / "config.yaml").read_text()
    assert "allow_any_teacher: true" in config


def _scheduler(epochs: int, warmup: int = 0):
    from microaunet_cli.config import ScheduleSettings
    from microaunet_cli.training.optim import build_scheduler

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    return build_scheduler(opt, ScheduleSettings(warmup_epochs=warmup), epochs)


def _resumed(old, old_epochs: int, epochs: int, done: int, mid_epoch: bool = False, warmup: int = 0):
    """What restore does: a scheduler built for the new count, the saved states, then the replan."""
    from microaunet_cli.config import ScheduleSettings
    from microaunet_cli.training.optim import replan_schedule

    sched = _scheduler(epochs, warmup)
    sched.optimizer.load_state_dict(old.optimizer.state_dict())
    sched.load_state_dict(old.state_dict())
    replan_schedule(sched, ScheduleSettings(warmup_epochs=warmup), old_epochs, epochs, done, mid_epoch)
    return sched


def _lrs_of(sched, n: int) -> list[float]:
    out = []
    for _ in range(n):
        out.append(sched.optimizer.param_groups[0]["lr"])
        sched.optimizer.step()
        sched.step()
    return out


def test_a_raised_epoch_count_keeps_falling_and_survives_a_second_resume():
    first = _scheduler(4)
    before = _lrs_of(first, 2)
    resumed = _resumed(first, 4, 8, done=2)
    after = _lrs_of(resumed, 3)
    lrs = before + after
    assert all(a > b for a, b in itertools.pairwise(lrs)) and lrs[-1] > 1e-5
    # A second resume at the same count carries on the same curve (kept in the scheduler's state).
    again = _resumed(resumed, 8, 8, done=5)
    straight = _lrs_of(resumed, 3)
    assert _lrs_of(again, 3) == pytest.approx(straight)
    assert straight[-1] > 1e-5 and straight[-1] < after[-1]


def test_a_raised_epoch_count_in_mid_epoch_keeps_that_epochs_lr():
    first = _scheduler(4)
    lrs = _lrs_of(first, 1)
    current = first.optimizer.param_groups[0]["lr"]  # epoch 2, begun when the run stopped
    resumed = _resumed(first, 4, 8, done=1, mid_epoch=True)
    assert _lrs_of(resumed, 1) == pytest.approx([current])
    assert lrs[0] > current


def test_a_raised_epoch_count_during_warm_up_is_the_longer_run_from_the_start():
    first = _scheduler(5, warmup=3)
    lrs = _lrs_of(first, 2) + _lrs_of(_resumed(first, 5, 10, done=2, warmup=3), 8)
    assert lrs == pytest.approx(_lrs_of(_scheduler(10, warmup=3), 10))


def test_validation_scores_match_evaluate_on_the_val_split(prepared, tmp_path):
    """Validation goes through the shared inference path: trained under bf16 autocast with channels_last,
    best.pt's validation metrics equal `evaluate --split val` at the training size (float32)."""
    from microaunet_cli.evaluation.evaluate import evaluate_checkpoint

    summary = train_teacher(
        settings_for(
            prepared,
            tmp_path,
            "train.epochs=1",
            "train.amp=bf16",
            "train.channels_last=true",
            "train.device=cpu",
            model="microaunet_fast",
        )
    )
    ours = load_checkpoint(summary.checkpoint_best)["metrics"]
    split = evaluate_checkpoint(
        Path(summary.checkpoint_best), split="val", out_dir=tmp_path / "ev", worst=0, device="cpu"
    ).splits["val"]
    theirs = split.get("resized", split)
    for convention in ("per_image", "pooled"):
        for key, value in theirs[convention].items():
            assert ours[convention][key] == pytest.approx(value, abs=1e-6), (convention, key)
