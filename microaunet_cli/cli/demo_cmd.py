"""``microaunet demo``: the whole workflow on the built-in synthetic set, in a few minutes."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from microaunet_cli.cli import base
from microaunet_cli.workflow.settings import DemoSettings

if TYPE_CHECKING:
    from microaunet_cli.workflow.demo import DemoResult

_opt = partial(base.setting_option, DemoSettings)


@base.command("demo")
def demo_command(
    out: Annotated[Path | None, _opt("out", "Folder for data, runs and reports.", "--out")] = None,
    epochs: Annotated[
        int | None,
        _opt("teacher_epochs", "Epochs of teacher and student each.", "--epochs", also=["student_epochs"]),
    ] = None,
    student: Annotated[
        str | None,
        _opt("student", "Student network (microaunet: the design of the MicroAUNet paper).", "--student"),
    ] = None,
    device: Annotated[str | None, _opt("device", "auto, cpu, cuda or mps.", "--device")] = None,
    quiet: Annotated[bool | None, _opt("quiet", "Only the final table.", "--quiet", "-q")] = None,
    threads: Annotated[int | None, base.threads_option(DemoSettings, "threads")] = None,
    resume: Annotated[
        bool | None,
        _opt(
            "resume",
            "Continue an interrupted demo (same options): each training step resumes from its last.pt.",
            "--resume",
        ),
    ] = None,
    config: base.ConfigOpt = None,
    sets: Annotated[list[str] | None, base.set_option(DemoSettings, "count=100")] = None,
    print_config: base.PrintConfigOpt = False,
) -> None:
    """Prepare the synthetic set, train the MALUNet teacher, distil the MicroAUNet student, evaluate and
    benchmark both, and compare them in one table. Needs no download.

    SIGTERM, SIGUSR1 or Ctrl-C stops it after the step in progress (a training step saves its last.pt
    first), with exit status 128 + the signal's number; continue with --resume."""
    settings = base.resolve_settings(DemoSettings, demo_command, locals())
    base.setup_logging(settings.quiet)
    from microaunet_cli.workflow.demo import run_demo  # torch: only once settings are valid

    result = run_demo(settings)
    if result.interrupted:
        _stopped(result)
    _show(result)


def _stopped(result: DemoResult) -> None:
    """No table from a half-trained network: the note, and 128 + the signal's number as exit status."""
    from microaunet_cli.training.signals import stop_exit_code

    base.err_console.print(f"[yellow]{result.note}[/]", highlight=False, soft_wrap=True)
    raise typer.Exit(stop_exit_code(result.stopped_by))


def _show(result: DemoResult) -> None:
    table = Table(
        title="Teacher vs distilled student (synthetic demo)",
        caption="GFLOPs/GMACs at 1×3×256×256; ms = batch-1 latency p50 at 256×256; "
        "mDice per image, Dice pooled, on the test split",
    )
    for col in ("", "network", "params", "GFLOPs", "GMACs", "ms", "mDice", "Dice"):
        table.add_column(col, justify="left" if col in ("", "network") else "right")
    for r in result.rows:
        table.add_row(
            r.role,
            r.model,
            f"{r.params:,}",
            f"{r.gflops:.4f}",
            f"{r.gmacs:.4f}",
            f"{r.latency_ms_p50:.1f}",
            f"{r.test_mdice:.4f}",
            f"{r.test_dice_pooled:.4f}",
        )
    teacher, student = result.rows
    table.add_row(
        "ratio",
        "student/teacher",
        f"{student.params / teacher.params:.2f}×",
        f"{student.gflops / teacher.gflops:.2f}×",
        "",
        f"{student.latency_ms_p50 / teacher.latency_ms_p50:.2f}×",
        f"{student.test_mdice - teacher.test_mdice:+.4f}",
        "",
    )
    base.console.print(table)
    base.console.print(
        f"device {result.device}, {result.threads} CPU threads; latency is the median of "
        f"interleaved batch-1 calls at 256×256. Everything is in {result.out}/ "
        f"(runs/, benchmark.md, eval-test/ overlays)."
    )
