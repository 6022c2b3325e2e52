"""``microaunet report``: mean ± sd over seeds and paired differences, from run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from microaunet_cli.cli.base import command, console, setup_logging
from microaunet_cli.evaluation.report import build_report, to_markdown
from microaunet_cli.fileio import write_json_atomic, write_text_atomic


@command("report")
def report_command(
    runs: Annotated[
        list[Path],
        typer.Argument(help="Run folders (runs/NAME-s0 runs/NAME-s1 ...), teachers and students together."),
    ],
    reference: Annotated[
        str | None,
        typer.Option(
            help="Group the differences are taken against, MODEL:KIND (kind supervised or distilled).",
            show_default="the students' teacher",
        ),
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the Markdown tables to this file.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every figure as JSON to this file.")
    ] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples of the test images.", min=100)] = 10_000,
) -> None:
    """Summarise runs grouped by network and kind: mean ± sd over seeds of every test metric, and the
    paired per-image difference against a reference (the teacher) with a 95% bootstrap interval."""
    setup_logging()
    report = build_report(runs, reference, resamples)
    text = to_markdown(report)
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    if markdown is not None:
        write_text_atomic(markdown, text)
    if json_out is not None:
        write_json_atomic(json_out, report)
