"""``microaunet demo``: the whole workflow on the built-in synthetic set, in a few minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from microaunet_cli.cli.base import (
    ConfigOpt,
    PrintConfigOpt,
    SetOpt,
    app,
    console,
    guarded,
    resolve_settings,
    setup_logging,
)


@app.command("demo")
@guarded
def demo_command(
    out: Annotated[Path | None, typer.Option("--out", help="Folder for data, runs and reports (default demo/).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Epochs of teacher and student each.")] = None,
    student: Annotated[str | None, typer.Option("--student", help="Student network (default microaunet_rt; "
                                                "microaunet is the seed's faithful design).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.")] = None,
    quiet: Annotated[bool | None, typer.Option("--quiet", "-q", help="Only the final table.")] = None,
    config: ConfigOpt = None, sets: SetOpt = None, print_config: PrintConfigOpt = False,
) -> None:
    """Prepare the synthetic set, train the MALUNet teacher, distil the MicroAUNet student, evaluate and
    benchmark both, and compare them in one table. Needs no download."""
    from microaunet_cli.workflow.demo import DemoSettings, run_demo

    options = {"out": out, "teacher_epochs": epochs, "student_epochs": epochs, "student": student,
               "device": device, "quiet": quiet}
    settings = resolve_settings(DemoSettings, config=config, sets=sets, options=options, print_config=print_config)
    setup_logging(settings.quiet)
    _show(run_demo(settings))


def _show(result: dict[str, Any]) -> None:
    rows = result["rows"]
    table = Table(title="Teacher vs distilled student (synthetic demo)",
                  caption="GFLOPs/GMACs at 1×3×256×256; ms = batch-1 latency p50 at 256×256; "
                          "mDice per image, Dice pooled, on the test split")
    for col in ("", "network", "params", "GFLOPs", "GMACs", "ms", "mDice", "Dice"):
        table.add_column(col, justify="left" if col in ("", "network") else "right")
    for r in rows:
        table.add_row(r["role"], r["model"], f"{r['params']:,}", f"{r['gflops']:.4f}", f"{r['gmacs']:.4f}",
                      f"{r['latency_ms_p50']:.1f}", f"{r['test_mdice']:.4f}", f"{r['test_dice_pooled']:.4f}")
    teacher, student = rows
    table.add_row("ratio", "student/teacher", f"{student['params'] / teacher['params']:.2f}×",
                  f"{student['gflops'] / teacher['gflops']:.2f}×", "",
                  f"{student['latency_ms_p50'] / teacher['latency_ms_p50']:.2f}×",
                  f"{student['test_mdice'] - teacher['test_mdice']:+.4f}", "")
    console.print(table)
    console.print(f"device {result['device']}, {result['threads']} CPU threads; latency is the median of "
                  f"interleaved batch-1 calls at 256×256. Everything is in {result['out']}/ "
                  f"(runs/, benchmark.md, eval-test/ overlays).")
