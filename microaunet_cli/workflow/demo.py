"""The built-in demo: prepare-data -> train-teacher -> distill -> evaluate -> benchmark on the
synthetic set, ending with one table comparing teacher and student. No download needed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from microaunet_cli.config import RunSettings
from microaunet_cli.cpu_threads import use_threads
from microaunet_cli.fileio import write_json_atomic
from microaunet_cli.training.signals import StopFlag
from microaunet_cli.workflow.settings import DemoSettings

if TYPE_CHECKING:
    from microaunet_cli.benchmark import BenchmarkReport
    from microaunet_cli.evaluation.evaluate import EvaluationSummary
    from microaunet_cli.training.summary import TrainingSummary

log = logging.getLogger(__name__)

STEPS = ("prepare-data", "train-teacher", "distill", "evaluate", "benchmark")


@dataclass(frozen=True)
class DemoRow:
    """One network of the comparison table: size and speed from the benchmark, scores on the test split."""

    role: str  # teacher or student
    model: str
    checkpoint: Path
    params: int
    gflops: float
    gmacs: float
    latency_ms_p50: float  # batch 1, at the benchmark size
    throughput_ips: float
    test_mdice: float  # per image, then the mean
    test_dice_pooled: float


@dataclass(frozen=True)
class DemoResult:
    """What the demo did, also written as ``<out>/summary.json``: the comparison of a completed demo, or
    the step a stop signal ended it in and how to continue."""

    status: str  # completed or interrupted
    interrupted: bool
    out: Path
    steps_done: list[str]
    rows: list[DemoRow] = field(default_factory=list)  # teacher, then student; empty when interrupted
    threads: int | None = None  # the CPU threads the benchmark ran with
    device: str | None = None
    stopped_by: str | None = None  # the signal's name
    stopped_in: str | None = None  # "3/5 distill"
    note: str | None = None  # what stopped and how to continue


def _run_settings(cfg: DemoSettings, data_dir: Path, model: str, epochs: int, **extra: Any) -> RunSettings:
    return RunSettings.model_validate(
        {
            "data": {"dataset": "synthetic", "prepared_dir": str(data_dir)},
            "model": {"name": model},
            "optim": {"lr": cfg.lr},
            "train": {
                "epochs": epochs,
                "batch_size": cfg.batch_size,
                "device": cfg.device,
                "seed": cfg.seed,
                "num_threads": cfg.threads,
            },
            "output": {"runs_dir": str(cfg.out / "runs"), "overwrite": True, "quiet": cfg.quiet},
            **extra,
        }
    )


class _Stopped(Exception):
    """A stop signal arrived during a step: no later step runs."""

    def __init__(self, step: str, signal_name: str | None, detail: str) -> None:
        super().__init__(step)
        self.step, self.signal_name, self.detail = step, signal_name, detail


def run_demo(cfg: DemoSettings) -> DemoResult:
    """Run every step; returns the comparison rows and where each artefact went (also ``summary.json``).

    A stop signal (SIGTERM, SIGUSR1, Ctrl-C) ends the demo after the step it arrived in; a training
    step saves its ``last.pt`` first. Nothing is evaluated, benchmarked or compared from a half-trained
    network: the result is ``interrupted`` and its note says how to continue (``microaunet demo --resume``).
    """
    use_threads(cfg.threads)
    done: list[str] = []
    stop = StopFlag()
    with stop.installed():
        try:
            result = _run_steps(cfg, stop, done)
        except _Stopped as exc:
            result = _stopped_result(cfg, exc, done)
    write_json_atomic(cfg.out / "summary.json", asdict(result))
    return result


def _run_steps(cfg: DemoSettings, stop: StopFlag, done: list[str]) -> DemoResult:
    from microaunet_cli.benchmark import BenchmarkSettings, run_benchmark, write_outputs
    from microaunet_cli.data import PrepareSettings, prepare_dataset
    from microaunet_cli.evaluation.evaluate import evaluate_checkpoint
    from microaunet_cli.training.runner import distill, teacher_model, train_teacher

    def finished(step: str, summary: TrainingSummary | None = None) -> None:
        _check_stop(stop, step, summary)
        done.append(step)

    data_dir = cfg.out / "data" / "synthetic"
    log.info("1/5 prepare-data: synthetic set, %d images at %d px", cfg.count, cfg.size)
    prepare_dataset(
        PrepareSettings(
            dataset="synthetic", out=data_dir, size=cfg.size, synthetic_count=cfg.count, seed=cfg.seed
        )
    )
    finished("prepare-data")
    teacher_name = teacher_model()
    log.info("2/5 train-teacher: %s, %d epochs", teacher_name, cfg.teacher_epochs)
    teacher_settings = _run_settings(cfg, data_dir, teacher_name, cfg.teacher_epochs)
    teacher = _train(cfg, train_teacher, teacher_settings, "supervised")
    finished("train-teacher", teacher)
    log.info("3/5 distill: %s under the teacher, %d epochs", cfg.student, cfg.student_epochs)
    under_teacher = {"teacher": str(teacher.checkpoint_best)}
    student_settings = _run_settings(cfg, data_dir, cfg.student, cfg.student_epochs, distill=under_teacher)
    student = _train(cfg, distill, student_settings, "distilled")
    finished("distill", student)
    log.info("4/5 evaluate: both checkpoints on the test split")
    ckpts = {"teacher": teacher.checkpoint_best, "student": student.checkpoint_best}
    scores = {
        role: evaluate_checkpoint(path, split="test", data_dir=data_dir, device=cfg.device)
        for role, path in ckpts.items()
    }
    finished("evaluate")
    log.info("5/5 benchmark: parameters, FLOPs and batch-1 latency at %d px", cfg.bench_size)
    bench = run_benchmark(
        BenchmarkSettings(
            ckpt=list(ckpts.values()),
            size=cfg.bench_size,
            modes=["eager"],
            device=cfg.device,
            repeats=cfg.bench_repeats,
            throughput_repeats=3,
            threads=cfg.threads,
        )
    )
    write_outputs(bench, cfg.out / "benchmark.json", cfg.out / "benchmark.md")
    done.append("benchmark")  # the last step: a stop arriving now leaves nothing unfinished
    return DemoResult(
        status="completed",
        interrupted=False,
        out=cfg.out,
        steps_done=done,
        rows=_comparison(ckpts, scores, bench),
        threads=bench.environment.get("cpu_threads"),
        device=bench.environment.get("device"),
    )


def _train(
    cfg: DemoSettings, train: Callable[..., TrainingSummary], settings: RunSettings, kind: str
) -> TrainingSummary:
    """One training step; with --resume it continues the run's last.pt where there is one."""
    from microaunet_cli.training.runner import run_folder_for

    resume = cfg.resume and run_folder_for(settings, kind).last.exists()
    return train(settings, resume=resume)


def _check_stop(stop: StopFlag, step: str, summary: TrainingSummary | None) -> None:
    """Raise :class:`_Stopped` when a stop signal arrived during ``step``. A training loop handles the
    signal itself (it saves, then returns an interrupted summary); other steps run to their end."""
    if summary is not None and summary.interrupted:
        raise _Stopped(
            step,
            summary.stopped_by,
            f"its run stopped at epoch {summary.epochs_done}/{summary.epochs} and saved "
            f"{summary.checkpoint_last}",
        )
    if stop.requested:
        raise _Stopped(step, stop.signal_name, "the step was finished")


def _stopped_result(cfg: DemoSettings, exc: _Stopped, done: list[str]) -> DemoResult:
    step = f"{STEPS.index(exc.step) + 1}/{len(STEPS)} {exc.step}"
    note = (
        f"demo interrupted by {exc.signal_name or 'a stop signal'} during step {step}: {exc.detail}. "
        f"No later step ran, so there is no comparison table. Continue with `microaunet demo --resume` "
        f"and the same options."
    )
    return DemoResult(
        status="interrupted",
        interrupted=True,
        out=cfg.out,
        steps_done=done,
        stopped_by=exc.signal_name,
        stopped_in=step,
        note=note,
    )


def _comparison(
    ckpts: dict[str, Path], scores: dict[str, EvaluationSummary], bench: BenchmarkReport
) -> list[DemoRow]:
    rows = []
    for (role, path), info in zip(ckpts.items(), bench.models):
        eager = next(r for r in bench.results if r.model == info.label and r.mode == "eager")
        test = scores[role].splits["test"]
        rows.append(
            DemoRow(
                role=role,
                model=info.name,
                checkpoint=path,
                params=info.params_total,
                gflops=info.flops / 1e9,
                gmacs=info.macs / 1e9,
                latency_ms_p50=eager.latency_ms_p50,
                throughput_ips=eager.throughput_ips,
                test_mdice=test["per_image"]["mdice"],
                test_dice_pooled=test["pooled"]["dice"],
            )
        )
    return rows
