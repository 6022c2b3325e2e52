"""``train-teacher`` and ``distill`` as library calls: settings in, run folder and summary out."""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

from torch import nn

from microaunet_cli.checkpoints import TrainedModel, build_model, load_checkpoint, load_trained
from microaunet_cli.config import RunSettings
from microaunet_cli.data import PreparedData, open_prepared
from microaunet_cli.errors import CheckpointError, ConfigError
from microaunet_cli.evaluation.scoring import CASE_COLUMNS, TEST_CASES, score_test_splits
from microaunet_cli.fileio import write_csv
from microaunet_cli.inference.resize import THRESHOLD
from microaunet_cli.models import count_parameters, list_models, model_entry
from microaunet_cli.training.distillation import DistillationObjective, state_checksum
from microaunet_cli.training.loop import TrainingRun
from microaunet_cli.training.objectives import Objective, SegmentationObjective
from microaunet_cli.training.provenance import check_teacher_data, verify_arrays
from microaunet_cli.training.run_folder import RunFolder
from microaunet_cli.training.runtime import barrier, seed_everything, setup_runtime, shutdown_runtime
from microaunet_cli.training.summary import TrainingSummary
from microaunet_cli.weights import resolve_checkpoint, shipped_names

log = logging.getLogger(__name__)

# Settings a resumed run takes from the command line rather than from its checkpoint.
RESUME_OVERRIDABLE = {
    ("train", "epochs"),
    ("train", "device"),
    ("train", "amp"),
    ("train", "compile"),
    ("train", "num_threads"),
    ("data", "on_device"),
    ("output", "quiet"),
}


# How a run trains, by the name commands and run folders use: train-teacher, distill.
OBJECTIVES: dict[str, type[Objective]] = {
    o.training_kind: o for o in (SegmentationObjective, DistillationObjective)
}


def default_run_name(settings: RunSettings, training: str) -> str:
    if training not in OBJECTIVES:  # "teacher" / "student" are roles of networks, not trainings
        raise ValueError(f"training must be one of {tuple(OBJECTIVES)}, not {training!r}")
    return f"{settings.data.dataset}-{settings.model.name}{OBJECTIVES[training].run_suffix}"


def run_folder_for(settings: RunSettings, training: str) -> RunFolder:
    """``training`` is "supervised" (train-teacher) or "distilled" (distill)."""
    return RunFolder(
        settings.output.runs_dir / (settings.output.name or default_run_name(settings, training))
    )


def teacher_model() -> str:
    """The network registered with the teacher role: the one the demo and ``run_distillation`` train
    as teacher, and whose train-teacher run ``distill`` looks for without ``--teacher``."""
    teachers = [name for name in list_models() if model_entry(name).role == "teacher"]
    if len(teachers) != 1:
        raise ConfigError(
            f"{len(teachers)} networks are registered as teachers ({', '.join(teachers) or 'none'}), so "
            f"there is no default teacher; name the teacher checkpoint with --teacher PATH"
        )
    return teachers[0]


def default_teacher_path(settings: RunSettings) -> Path:
    """``runs/<dataset>-<teacher network>/checkpoints/best.pt``: train-teacher's run of the data set."""
    name = f"{settings.data.dataset}-{teacher_model()}"
    return settings.output.runs_dir / name / "checkpoints" / "best.pt"


def train_teacher(settings: RunSettings, resume: bool = False) -> TrainingSummary:
    """Supervised training (BCE + Dice) of ``settings.model``; any registered network works."""
    return _train(settings, "supervised", resume)


def distill(settings: RunSettings, resume: bool = False) -> TrainingSummary:
    """Train ``settings.model`` (the student) under a frozen teacher with the two-stage curriculum."""
    return _train(settings, "distilled", resume)


def _train(settings: RunSettings, training: str, resume: bool) -> TrainingSummary:
    started = time.time()
    data = _open_data(settings)
    folder = run_folder_for(settings, training)
    resume_from = _last_checkpoint(folder) if resume else None
    if resume_from is not None:
        settings = _resumed_settings(settings, resume_from["settings"])
    rt = setup_runtime(settings.train)
    try:
        seed_everything(settings.train.seed + rt.rank, settings.train.deterministic)
        if rt.is_main:
            folder.prepare(resume, settings.output.overwrite)
        barrier(rt)
        objective = _BUILDERS[training](settings, build_model(settings), data)
        # Every checkpoint and the summary say which data the run used (see data/identity.py).
        identity = {"data_identity": data.identity(settings.data.fold)}
        run = TrainingRun(settings, objective, data, rt, folder, extra_payload=lambda: identity)
        if resume_from is not None:
            run.restore(resume_from)
        if rt.is_main:
            folder.write_config(settings)
            folder.write_env(rt.device, rt.world_size)
        log.info(
            "%s run %s: %s, %s images/epoch, device %s%s",
            training,
            folder.root,
            settings.model.name,
            len(run.train_feed.arrays),
            rt.device,
            f", amp {rt.amp_dtype}" if rt.amp_dtype else "",
        )
        status = run.run()
        record = _record(run, status, started, identity)
        objective.after_run(record)
        if rt.is_main:
            folder.write_summary(record)
        return TrainingSummary.from_record(record)
    finally:
        shutdown_runtime(rt)


def _last_checkpoint(folder: RunFolder) -> dict[str, Any]:
    if not folder.last.exists():
        raise ConfigError(
            f"--resume: no checkpoint at {folder.last}; start without --resume, or pass the "
            f"--name of the run to continue"
        )
    return load_checkpoint(folder.last)


def _resumed_settings(current: RunSettings, saved_settings: dict[str, Any]) -> RunSettings:
    merged = RunSettings.model_validate(saved_settings).model_dump()
    now = current.model_dump()
    for section, key in RESUME_OVERRIDABLE:
        merged[section][key] = now[section][key]
    for section, values in now.items():
        for key, value in values.items():
            if (
                (section, key) not in RESUME_OVERRIDABLE
                and merged[section][key] != value
                and section != "output"
            ):
                log.warning(
                    "resume keeps the run's %s.%s = %r (the command asked for %r)",
                    section,
                    key,
                    merged[section][key],
                    value,
                )
    return RunSettings.model_validate(merged)


def _open_data(settings: RunSettings) -> PreparedData:
    data = open_prepared(settings.data.resolved_dir())
    if data.dataset != settings.data.dataset:
        if "dataset" in settings.data.model_fields_set:
            raise ConfigError(
                f"--dataset is {settings.data.dataset!r} but {data.root} holds {data.dataset!r}; "
                f"drop one of --dataset / --data-dir or make them agree"
            )
        settings.data.dataset = data.dataset  # --data-dir alone: the folder says what it holds
    if settings.data.size is not None and settings.data.size != data.size:
        raise ConfigError(
            f"data.size is {settings.data.size} but {data.root} was prepared at {data.size}; "
            f"re-run `microaunet prepare-data --size {settings.data.size}` or drop data.size"
        )
    verify_arrays(data)
    return data


def _supervised(settings: RunSettings, model: nn.Module, data: PreparedData) -> Objective:
    return SegmentationObjective(model, settings.train.loss, settings.train.deep_supervision)


def _distillation(settings: RunSettings, model: nn.Module, data: PreparedData) -> Objective:
    # A shipped name (`microaunet models`) stands for its file, as --ckpt does elsewhere.
    path = resolve_checkpoint(settings.distill.teacher or default_teacher_path(settings))
    if not path.exists():
        raise CheckpointError(
            f"no teacher checkpoint at {path}; train one first with `microaunet train-teacher --dataset "
            f"{settings.data.dataset}` (same data and size), or point to one with --teacher PATH "
            f"(or a shipped name: {', '.join(shipped_names()) or 'none installed'})"
        )
    trained = load_trained(path)
    teacher = trained.network
    provenance = check_teacher_data(
        path,
        trained.data_identity,
        data.identity(settings.data.fold),
        settings.distill.allow_teacher_mismatch,
    )
    if not settings.distill.allow_teacher_mismatch:
        _check_teacher_fits(trained, data)
    role = _check_teacher_role(path, trained.name, settings.distill.allow_any_teacher)
    info = {
        "path": str(path),
        "model": trained.name,
        "role": role,
        "training": trained.training,
        "allow_any_teacher": settings.distill.allow_any_teacher,
        "data": provenance,
        "checksum": state_checksum(teacher),
        "params": count_parameters(teacher)[0],
    }
    return DistillationObjective(
        model,
        teacher,
        settings.distill,
        settings.train.epochs,
        info,
        settings.train.loss,
        settings.train.deep_supervision,
    )


_BUILDERS = {"supervised": _supervised, "distilled": _distillation}


def _check_teacher_fits(teacher: TrainedModel, data: PreparedData) -> None:
    problems = []
    if teacher.dataset != data.dataset:
        problems.append(f"it was trained on {teacher.dataset!r}, this run uses {data.dataset!r}")
    if teacher.size != data.size:
        problems.append(f"its input size is {teacher.size}, the data here is {data.size}")
    if problems:
        raise CheckpointError(
            f"teacher {teacher.path} does not match this run: {'; '.join(problems)}. Train a teacher on "
            f"the same data with `microaunet train-teacher --dataset {data.dataset}` or pass a "
            f"matching --teacher"
        )


def _check_teacher_role(path: Path, name: str, allow_any: bool) -> str:
    """A teacher must be a network registered as one, unless the run says otherwise (recorded)."""
    role = model_entry(name).role
    if role != "teacher" and not allow_any:
        raise CheckpointError(
            f"teacher {path} holds {name!r}, a {role} network, not a teacher; pass the "
            f"checkpoint of a teacher network (train one with `microaunet train-teacher "
            f"--model {teacher_model()}`), or --allow-any-teacher to distil from it anyway"
        )
    if role != "teacher":
        log.warning("--allow-any-teacher: distilling from %s, a %s network (%s)", name, role, path)
    return role


def _record(run: TrainingRun, status: str, started: float, extra: dict) -> dict[str, Any]:
    """The run's summary.json (:class:`TrainingSummary` reads it back)."""
    st = run.state
    rates = [r["train_images_per_s"] for r in st.history if r.get("train_images_per_s")]
    summary: dict[str, Any] = {
        "status": status,
        # A stopped run's checkpoints are not final: whatever is built from them must say so.
        "interrupted": status != "completed",
        "stopped_by": run.stop.signal_name if status != "completed" else None,
        "model": run.s.model.name,
        "role": model_entry(run.s.model.name).role,
        "training": run.objective.training_kind,
        **run.objective.plan(),
        **run.objective.checkpoint_extras(),
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
        summary.update(_test_metrics(run))
    return summary


def _test_metrics(run: TrainingRun) -> dict[str, Any]:
    """Test-split scores of the best checkpoint (reported only; nothing is chosen on them), at original
    resolution as `evaluate` computes them, with per-case rows in test_per_case.csv for `report`."""
    barrier(run.rt)  # every process must read the best.pt that rank 0 has finished writing
    best = load_checkpoint(run.folder.best, map_location=run.rt.device) if run.folder.best.exists() else None
    if best is not None:
        run.model.load_state_dict(best["model"])
    # Every process scores the whole (small) test split: no gathering, and the same numbers everywhere.
    results, rows = score_test_splits(
        run.model, run.data, run.mean, run.std, run.rt.device, run.s.train.eval_batch_size
    )
    if run.rt.is_main:
        write_csv(run.folder.root / TEST_CASES, rows, CASE_COLUMNS)
    size = run.data.size
    return {
        "test": results,
        "scoring": {
            "test": "per split 'resolution': 'original' = probabilities at the training size resized "
            f"bilinearly to each ground truth's size, then thresholded at {THRESHOLD}; the resized-mask "
            "scores under 'resized'",
            "validation": f"at the training size {size}x{size}, against the resized masks (chooses best.pt)",
        },
    }


__all__ = [
    "TrainingSummary",
    "default_teacher_path",
    "distill",
    "run_folder_for",
    "teacher_model",
    "train_teacher",
]
