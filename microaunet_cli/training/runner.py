"""``train-teacher`` and ``distill`` as library calls: settings in, run folder and summary out."""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

from torch import nn

from microaunet_cli.config import RunSettings
from microaunet_cli.data import PreparedData, open_prepared
from microaunet_cli.errors import CheckpointError, ConfigError
from microaunet_cli.models import count_parameters
from microaunet_cli.training.checkpoint import build_model, load_checkpoint, model_from_checkpoint
from microaunet_cli.training.distillation import DistillationObjective, state_checksum
from microaunet_cli.training.feed import SplitFeed
from microaunet_cli.training.loop import TrainingRun
from microaunet_cli.training.objectives import SegmentationObjective
from microaunet_cli.training.run_folder import RunFolder
from microaunet_cli.training.runtime import barrier, seed_everything, setup_runtime, shutdown_runtime

log = logging.getLogger(__name__)

TEACHER_MODEL = "malunet"
# Settings a resumed run takes from the command line rather than from its checkpoint.
RESUME_OVERRIDABLE = {("train", "epochs"), ("train", "device"), ("train", "amp"), ("train", "compile"),
                      ("train", "num_threads"), ("data", "on_device"), ("output", "quiet")}


def default_run_name(settings: RunSettings, kind: str) -> str:
    base = f"{settings.data.dataset}-{settings.model.name}"
    return base + "-distill" if kind == "student" else base


def run_folder_for(settings: RunSettings, kind: str) -> RunFolder:
    return RunFolder(settings.output.runs_dir / (settings.output.name or default_run_name(settings, kind)))


def default_teacher_path(settings: RunSettings) -> Path:
    name = f"{settings.data.dataset}-{TEACHER_MODEL}"
    return settings.output.runs_dir / name / "checkpoints" / "best.pt"


def train_teacher(settings: RunSettings, resume: bool = False) -> dict[str, Any]:
    """Supervised training (BCE + Dice) of ``settings.model``; any registered network works."""
    return _train(settings, "teacher", resume)


def distill(settings: RunSettings, resume: bool = False) -> dict[str, Any]:
    """Train ``settings.model`` (the student) under a frozen teacher with the two-stage curriculum."""
    return _train(settings, "student", resume)


def _train(settings: RunSettings, kind: str, resume: bool) -> dict[str, Any]:
    started = time.time()
    data = _open_data(settings)
    folder = run_folder_for(settings, kind)
    resume_from = _last_checkpoint(folder) if resume else None
    if resume_from is not None:
        settings = _resumed_settings(settings, resume_from["settings"])
    rt = setup_runtime(settings.train)
    try:
        seed_everything(settings.train.seed + rt.rank, settings.train.deterministic)
        if rt.is_main:
            folder.prepare(resume, settings.output.overwrite)
        barrier(rt)
        model = build_model(settings)
        objective, teacher_info = _objective(settings, kind, model, data)
        run = TrainingRun(settings, objective, data, rt, folder, extra_payload=lambda: teacher_info)
        if resume_from is not None:
            run.restore(resume_from)
        if rt.is_main:
            folder.write_config(settings)
            folder.write_env(rt.device, rt.world_size)
        log.info("%s run %s: %s, %s images/epoch, device %s%s", kind, folder.root, settings.model.name,
                 len(run.train_feed.arrays), rt.device, f", amp {rt.amp_dtype}" if rt.amp_dtype else "")
        status = run.run()
        summary = _summary(run, kind, status, started, teacher_info)
        if kind == "student":
            _check_teacher_untouched(objective, teacher_info, summary)
        if rt.is_main:
            folder.write_summary(summary)
        return summary
    finally:
        shutdown_runtime(rt)


def _last_checkpoint(folder: RunFolder) -> dict[str, Any]:
    if not folder.last.exists():
        raise ConfigError(f"--resume: no checkpoint at {folder.last}; start without --resume, or pass the "
                          f"--name of the run to continue")
    return load_checkpoint(folder.last)


def _resumed_settings(current: RunSettings, saved_settings: dict[str, Any]) -> RunSettings:
    merged = RunSettings.model_validate(saved_settings).model_dump()
    now = current.model_dump()
    for section, key in RESUME_OVERRIDABLE:
        merged[section][key] = now[section][key]
    for section, values in now.items():
        for key, value in values.items():
            if (section, key) not in RESUME_OVERRIDABLE and merged[section][key] != value and section != "output":
                log.warning("resume keeps the run's %s.%s = %r (the command asked for %r)",
                            section, key, merged[section][key], value)
    return RunSettings.model_validate(merged)


def _open_data(settings: RunSettings) -> PreparedData:
    data = open_prepared(settings.data.resolved_dir())
    if data.dataset != settings.data.dataset:
        if "dataset" in settings.data.model_fields_set:
            raise ConfigError(f"--dataset is {settings.data.dataset!r} but {data.root} holds {data.dataset!r}; "
                              f"drop one of --dataset / --data-dir or make them agree")
        settings.data.dataset = data.dataset  # --data-dir alone: the folder says what it holds
    if settings.data.size is not None and settings.data.size != data.size:
        raise ConfigError(f"data.size is {settings.data.size} but {data.root} was prepared at {data.size}; "
                          f"re-run `microaunet prepare-data --size {settings.data.size}` or drop data.size")
    return data


def _objective(settings: RunSettings, kind: str, model: nn.Module, data: PreparedData):
    if kind == "teacher":
        return SegmentationObjective(model), {}
    path = settings.distill.teacher or default_teacher_path(settings)
    if not Path(path).exists():
        raise CheckpointError(
            f"no teacher checkpoint at {path}; train one first with `microaunet train-teacher --dataset "
            f"{settings.data.dataset}` (same data and size), or point to one with --teacher PATH")
    teacher, t_settings, meta = model_from_checkpoint(path)
    _check_teacher_fits(path, meta, t_settings, data)
    info = {"teacher": {"path": str(path), "model": t_settings.model.name,
                        "checksum": state_checksum(teacher), "params": count_parameters(teacher)[0]}}
    return DistillationObjective(model, teacher, settings.distill, settings.train.epochs), info


def _check_teacher_fits(path: Path, meta: dict, t_settings: RunSettings, data: PreparedData) -> None:
    problems = []
    if meta.get("dataset") != data.dataset:
        problems.append(f"it was trained on {meta.get('dataset')!r}, this run uses {data.dataset!r}")
    if meta.get("size") != data.size:
        problems.append(f"its input size is {meta.get('size')}, the data here is {data.size}")
    if problems:
        raise CheckpointError(f"teacher {path} does not match this run: {'; '.join(problems)}. Train a teacher on "
                              f"the same data with `microaunet train-teacher --dataset {data.dataset}` or pass a "
                              f"matching --teacher")


def _check_teacher_untouched(objective: nn.Module, info: dict, summary: dict) -> None:
    after = state_checksum(objective.teacher)
    summary["teacher"]["checksum_after"] = after
    if after != info["teacher"]["checksum"]:
        raise RuntimeError("the teacher's weights changed during distillation; this is a bug, please report it")


def _summary(run: TrainingRun, kind: str, status: str, started: float, extra: dict) -> dict[str, Any]:
    st = run.state
    rates = [r["train_images_per_s"] for r in st.history if r.get("train_images_per_s")]
    summary: dict[str, Any] = {
        "status": status,
        # A stopped run's checkpoints are not final: whatever is built from them must say so.
        "interrupted": status != "completed",
        "stopped_by": run.stop.signal_name if status != "completed" else None,
        "kind": kind,
        "model": run.s.model.name,
        "params": count_parameters(run.model)[0],
        "dataset": run.data.dataset,
        "size": run.data.size,
        "epochs_done": st.epoch,
        "epochs": run.s.train.epochs,
        "best_epoch": st.best_epoch,
        "best_val_mdice": st.best_mdice if st.best_mdice >= 0 else None,
        "wall_seconds": round(time.time() - started, 2),
        "train_seconds": round(st.train_seconds, 2),
        "train_images_per_s_median": statistics.median(rates) if rates else None,
        "device": str(run.rt.device),
        "world_size": run.rt.world_size,
        "rank": run.rt.rank,
        "checkpoint_best": str(run.folder.best),
        "checkpoint_last": str(run.folder.last),
        **extra,
    }
    if status == "completed":
        summary["test"] = _test_metrics(run)
    return summary


def _test_metrics(run: TrainingRun) -> dict[str, Any]:
    """Test-split scores of the best checkpoint (reported only; nothing is chosen on them)."""
    barrier(run.rt)  # every process must read the best.pt that rank 0 has finished writing
    best = load_checkpoint(run.folder.best, map_location=run.rt.device) if run.folder.best.exists() else None
    if best is not None:
        run.model.load_state_dict(best["model"])
    out = {}
    for split in run.data.test_splits:
        arrays = run.data.load(split)
        if len(arrays):
            feed = SplitFeed(arrays, run.rt.device, run.s.data.on_device, run.rt.rank, run.rt.world_size)
            out[split] = run.evaluate(feed)
    return out


__all__ = ["default_teacher_path", "distill", "run_folder_for", "train_teacher"]
