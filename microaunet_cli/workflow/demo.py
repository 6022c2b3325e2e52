"""The built-in demo: prepare-data -> train-teacher -> distill -> evaluate -> benchmark on the
synthetic set, ending with one table comparing teacher and student. No download needed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from microaunet_cli.config import RunSettings
from microaunet_cli.config.settings import ModelName, Section, Side
from microaunet_cli.cpu_threads import use_threads
from microaunet_cli.fileio import write_json_atomic
from microaunet_cli.models import DEFAULT_STUDENT
from microaunet_cli.training.signals import StopFlag

log = logging.getLogger(__name__)


class DemoSettings(Section):
    out: Path = Path("demo")
    # Small images and a small set keep the whole workflow to a few minutes on a laptop CPU.
    size: Side = 64
    count: int = 200
    # The student to distil: the latency-first microaunet_rt, or microaunet (the seed's faithful design).
    student: ModelName = DEFAULT_STUDENT
    teacher_epochs: int = Field(default=30, ge=1)
    student_epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=16, ge=1)
    # Peak learning rate of both runs. Short runs learn faster with 3e-3 than with the 300-epoch
    # recipe's 1e-3 (measured on this demo, README opening, and on Kvasir at 40 epochs, README "Measured").
    lr: float = Field(default=3e-3, gt=0)
    device: str = "auto"
    # CPU threads for every step (the training runs' train.num_threads, benchmark's threads); None
    # keeps torch's choice. Set it when the demo shares the machine with another job.
    threads: int | None = Field(default=None, ge=1)
    seed: int = 42
    # Speed is measured at the size papers quote, whatever size the demo trains at.
    bench_size: Side = 256
    bench_repeats: int = Field(default=20, ge=1)
    quiet: bool = False
    # Continue an interrupted demo: each training step resumes from its last.pt where there is one.
    resume: bool = False


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


STEPS = ("prepare-data", "train-teacher", "distill", "evaluate", "benchmark")


class _Stopped(Exception):
    """A stop signal arrived during a step: no later step runs."""

    def __init__(self, step: str, signal_name: str | None, detail: str) -> None:
        super().__init__(step)
        self.step, self.signal_name, self.detail = step, signal_name, detail


def run_demo(cfg: DemoSettings) -> dict[str, Any]:
    """Run every step; returns the comparison rows and where each artefact went (also ``summary.json``).

    A stop signal (SIGTERM, SIGUSR1, Ctrl-C) ends the demo after the step it arrived in; a training
    step saves its ``last.pt`` first. Nothing is evaluated, benchmarked or compared from a half-trained
    network: the result says ``"interrupted": true`` and how to continue (``microaunet demo --resume``).
    """
    use_threads(cfg.threads)
    done: list[str] = []
    stop = StopFlag()
    with stop.installed():
        try:
            result = {"status": "completed", "interrupted": False, **_run_steps(cfg, stop, done)}
        except _Stopped as exc:
            result = _stopped_result(cfg, exc)
    result["steps_done"] = done
    write_json_atomic(cfg.out / "summary.json", result)
    return result


def _run_steps(cfg: DemoSettings, stop: StopFlag, done: list[str]) -> dict[str, Any]:
    from microaunet_cli.benchmark import BenchmarkSettings, run_benchmark, write_outputs
    from microaunet_cli.data import PrepareSettings, prepare_dataset
    from microaunet_cli.evaluation.evaluate import evaluate_checkpoint
    from microaunet_cli.training.runner import distill, train_teacher

    def finished(step: str, summary: dict[str, Any] | None = None) -> None:
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
    log.info("2/5 train-teacher: malunet, %d epochs", cfg.teacher_epochs)
    teacher = _train(
        cfg, train_teacher, _run_settings(cfg, data_dir, "malunet", cfg.teacher_epochs), "supervised"
    )
    finished("train-teacher", teacher)
    log.info("3/5 distill: %s under the teacher, %d epochs", cfg.student, cfg.student_epochs)
    student = _train(
        cfg,
        distill,
        _run_settings(
            cfg, data_dir, cfg.student, cfg.student_epochs, distill={"teacher": teacher["checkpoint_best"]}
        ),
        "distilled",
    )
    finished("distill", student)
    log.info("4/5 evaluate: both checkpoints on the test split")
    ckpts = {"teacher": Path(teacher["checkpoint_best"]), "student": Path(student["checkpoint_best"])}
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
    return {
        "rows": _comparison(ckpts, scores, bench),
        "out": str(cfg.out),
        "threads": bench.environment.get("cpu_threads"),
        "device": bench.environment.get("device"),
    }


def _train(
    cfg: DemoSettings, train: Callable[..., dict[str, Any]], settings: RunSettings, kind: str
) -> dict[str, Any]:
    """One training step; with --resume it continues the run's last.pt where there is one."""
    from microaunet_cli.training.runner import run_folder_for

    resume = cfg.resume and run_folder_for(settings, kind).last.exists()
    return train(settings, resume=resume)


def _check_stop(stop: StopFlag, step: str, summary: dict[str, Any] | None) -> None:
    """Raise :class:`_Stopped` when a stop signal arrived during ``step``. A training loop handles the
    signal itself (it saves, then returns an interrupted summary); other steps run to their end."""
    if summary is not None and summary["interrupted"]:
        raise _Stopped(
            step,
            summary["stopped_by"],
            f"its run stopped at epoch {summary['epochs_done']}/"
            f"{summary['epochs']} and saved {summary['checkpoint_last']}",
        )
    if stop.requested:
        raise _Stopped(step, stop.signal_name, "the step was finished")


def _stopped_result(cfg: DemoSettings, exc: _Stopped) -> dict[str, Any]:
    step = f"{STEPS.index(exc.step) + 1}/{len(STEPS)} {exc.step}"
    note = (
        f"demo interrupted by {exc.signal_name or 'a stop signal'} during step {step}: {exc.detail}. "
        f"No later step ran, so there is no comparison table. Continue with `microaunet demo --resume` "
        f"and the same options."
    )
    return {
        "status": "interrupted",
        "interrupted": True,
        "stopped_by": exc.signal_name,
        "stopped_in": step,
        "note": note,
        "rows": [],
        "out": str(cfg.out),
    }


def _comparison(ckpts: dict[str, Path], scores: dict[str, dict], bench) -> list[dict[str, Any]]:
    rows = []
    for (role, path), info in zip(ckpts.items(), bench.models):
        eager = next(r for r in bench.results if r.model == info.label and r.mode == "eager")
        test = scores[role]["splits"]["test"]
        rows.append(
            {
                "role": role,
                "model": info.name,
                "checkpoint": str(path),
                "params": info.params_total,
                "gflops": info.flops / 1e9,
                "gmacs": info.macs / 1e9,
                "latency_ms_p50": eager.latency_ms_p50,
                "throughput_ips": eager.throughput_ips,
                "test_mdice": test["per_image"]["mdice"],
                "test_dice_pooled": test["pooled"]["dice"],
            }
        )
    return rows
