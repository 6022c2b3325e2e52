"""``microaunet export``: a checkpoint to ONNX / TorchScript / torch.export, checked and described."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
from microaunet_cli.export import ExportResult, ExportSettings, export_checkpoint


def _parity_table(result: ExportResult) -> Table:
    title = f"Parity with the eager network ({result.format}, exporter: {result.written.exporter})"
    table = Table(title=title, title_justify="left")
    table.add_column("batch", justify="right")
    table.add_column("max |Δ probability|", justify="right")
    table.add_column("Dice of masks (>0.5)", justify="right")
    for p in result.parity:
        table.add_row(str(p.batch), f"{p.max_abs_diff:.2e}", f"{p.dice:.4f}")
    return table


@app.command("export")
@guarded
def export_command(
    ckpt: Annotated[Path | None, typer.Option(
        "--ckpt", help="Checkpoint to export (best.pt or last.pt).")] = None,
    format: Annotated[str | None, typer.Option(
        "--format", help="onnx, torchscript or export (a torch.export .pt2). [default: onnx]")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Output file. [default: beside the checkpoint: best.onnx / .torchscript.pt / .pt2]")] = None,
    size: Annotated[int | None, typer.Option(
        help="Input side in pixels. [default: the checkpoint's training size]")] = None,
    opset: Annotated[int | None, typer.Option(help="ONNX opset. [default: 18]")] = None,
    exporter: Annotated[str | None, typer.Option(
        help="ONNX exporter: auto (dynamo, falling back to the TorchScript-based one), dynamo or "
             "torchscript. [default: auto]")] = None,
    int8: Annotated[bool | None, typer.Option(
        "--int8", help="Also write <out stem>.int8.onnx (ONNX Runtime static quantisation), calibrated on "
                       "the training split and checked against fp32 on the validation split.")] = None,
    calibration_images: Annotated[int | None, typer.Option(
        help="Training images to calibrate INT8 on. [default: 100]")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Prepared data folder for --int8. [default: the checkpoint's]")] = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    print_config: PrintConfigOpt = False,
) -> None:
    """Export a checkpoint with a dynamic batch axis, check it, and write a sidecar JSON beside it.

    The check runs the file on image-like inputs at two batch sizes against the eager network.

    It prints the max absolute difference of probabilities and the Dice of the masks (threshold 0.5).

    Beyond tolerance it is an error and the file is removed.

    With --int8 the quantised file must agree with fp32 (mean mask Dice >= 0.98 on the validation
    split) or it is removed and the command fails.

    The sidecar (<out>.json) records input size, normalisation, threshold and output = logits.
    """
    settings = resolve_settings(
        ExportSettings, config=config, sets=sets, print_config=print_config,
        options={"ckpt": ckpt, "format": format, "out": out, "size": size, "opset": opset,
                 "exporter": exporter, "int8": int8, "calibration_images": calibration_images,
                 "data_dir": data_dir},
    )
    setup_logging()
    result = export_checkpoint(settings)
    console.print(_parity_table(result))
    opset_note = f", opset {result.written.opset}" if result.written.opset else ""
    h, w = result.input_size
    console.print(f"wrote [bold]{result.out}[/] ({result.model}, {h}×{w}, dynamic batch{opset_note}) "
                  f"and [bold]{result.sidecar}[/]")
    if result.int8 is not None:
        a = result.int8.agreement
        console.print(f"wrote [bold]{result.int8.out}[/] (INT8, calibrated on {result.int8.calibration_images} "
                      f"training images): masks agree with fp32 on {a.n_images} {a.split} images, mean Dice "
                      f"{a.mean_dice:.4f} (worst {a.min_dice:.4f})")
    console.print("the output is logits: apply a sigmoid, then threshold at 0.5")
