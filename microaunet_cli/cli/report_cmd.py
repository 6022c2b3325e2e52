"""``microaunet report``: mean ± sd over seeds and paired differences, from run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from microaunet_cli.cli.base import command, console, setup_logging
from microaunet_cli.errors import DataError
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
) -> None:
    """Summarise runs grouped by data set, network and kind: mean ± sd over seeds of every test metric,
    and the paired per-image difference against a reference (the teacher, on the same data) with a 95%
    Student t interval over seeds and images, the seed count printed beside it.

    A run folder that cannot be read is named and left out; the others are reported, and the command
    then exits with status 2."""
    setup_logging()
    from microaunet_cli.evaluation.report import build_report, to_markdown  # numpy and torch: not for --help

    report = build_report(runs, reference)
    text = to_markdown(report)
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    if markdown is not None:
        write_text_atomic(markdown, text)
    if json_out is not None:
        write_json_atomic(json_out, report)
    if report["left_out"]:
        folders = ", ".join(x["folder"] for x in report["left_out"])
        raise DataError(
            f"{len(report['left_out'])} run folder(s) left out of the report: {folders} "
            f"(reasons above); fix or drop them and report again"
        )
