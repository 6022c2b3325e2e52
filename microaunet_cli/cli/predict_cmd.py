"""``microaunet predict``: polyp masks for your own images, from a checkpoint or an ONNX export."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from microaunet_cli.cli.base import (
    ConfigOpt,
    PrintConfigOpt,
    SetOpt,
    ThreadsOpt,
    app,
    console,
    err_console,
    guarded,
    resolve_settings,
    setup_logging,
)
from microaunet_cli.cpu_threads import use_threads
from microaunet_cli.inference.predict import PredictReport, predict
from microaunet_cli.inference.settings import PredictSettings


@contextmanager
def _progress_bar() -> Iterator[Progress]:
    """A bar on a terminal; nothing in logs and pipes (``disable`` keeps the calls harmless)."""
    bar = Progress(TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err_console, disable=not err_console.is_terminal, transient=True)
    with bar:
        yield bar


def _print_report(report: PredictReport) -> None:
    console.print(f"{len(report.predicted)} mask(s) written to [bold]{report.out_dir / 'masks'}[/]; "
                  f"areas and confidences in {report.out_dir / 'predictions.csv'}")
    if report.failed:
        console.print(f"[yellow]{len(report.failed)} file(s) skipped:[/]")
        for row in report.failed:
            console.print(f"  {row['error']}", highlight=False, soft_wrap=True)


@app.command("predict")
@guarded
def predict_command(
    input: Annotated[Path, typer.Option("--input", "-i", help="An image, or a folder of images "
                                        "(jpg, jpeg, png, tif, tiff, bmp; hidden files ignored).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (masks/, overlays/, predictions.csv).")],
    ckpt: Annotated[Path | None, typer.Option("--ckpt", help="Training checkpoint (.pt).")] = None,
    onnx: Annotated[Path | None, typer.Option("--onnx", help="Exported ONNX file (its .json sidecar beside it).")] = None,
    overlay: Annotated[bool | None, typer.Option("--overlay", help="Also write outline overlays.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per forward pass. \\[default: 8]")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="Probability threshold. \\[default: 0.5, or the ONNX sidecar's]")] = None,
    device: Annotated[str | None, typer.Option(
        help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps. \\[default: auto]")] = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    print_config: PrintConfigOpt = False,
) -> None:
    """Predict polyp masks at each image's own resolution (PNG, 0 = background, 255 = polyp).

    Unreadable files are reported and skipped; the command fails only when no image could be predicted.
    """
    options = {"input": input, "out": out, "ckpt": ckpt, "onnx": onnx, "overlay": overlay,
               "batch_size": batch_size, "threshold": threshold, "device": device, "threads": threads}
    s = resolve_settings(PredictSettings, config=config, sets=sets, options=options, print_config=print_config)
    setup_logging()
    use_threads(s.threads)
    with _progress_bar() as bar:
        task = bar.add_task("predict", total=None)
        report = predict(s.input, s.out, ckpt=s.ckpt, onnx=s.onnx, batch_size=s.batch_size,
                         threshold=s.threshold, device=s.device, overlay=s.overlay,
                         on_start=lambda n: bar.update(task, total=n),
                         advance=lambda n: bar.advance(task, n))
    _print_report(report)
