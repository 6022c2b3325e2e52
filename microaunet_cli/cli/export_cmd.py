"""``microaunet export``: a checkpoint to ONNX / TorchScript / torch.export, checked and described."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from rich.table import Table

from microaunet_cli.cli import base
from microaunet_cli.cli.base import console
from microaunet_cli.export.settings import ExportSettings

if TYPE_CHECKING:
    from microaunet_cli.export import ExportResult

_opt = partial(base.setting_option, ExportSettings)


def _parity_table(result: ExportResult) -> Table:
    title = f"Parity with the eager network ({result.format}, exporter: {result.written.exporter})"
    table = Table(title=title, title_justify="left")
    table.add_column("batch", justify="right")
    table.add_column("max |Δ probability|", justify="right")
    table.add_column("Dice of masks (>0.5)", justify="right")
    for p in result.parity:
        table.add_row(str(p.batch), f"{p.max_abs_diff:.2e}", f"{p.dice:.4f}")
    return table


@base.command("export")
def export_command(
    ckpt: Annotated[Path | None, _opt("ckpt", "Checkpoint to export (best.pt or last.pt).", "--ckpt")] = None,
    format: Annotated[
        str | None, _opt("format", "onnx, torchscript or export (a torch.export .pt2).", "--format")
    ] = None,
    out: Annotated[
        Path | None,
        _opt("out", "Output file.", unset="beside the checkpoint: best.onnx / .torchscript.pt / .pt2"),
    ] = None,
    size: Annotated[
        int | None, _opt("size", "Input side in pixels.", unset="the checkpoint's training size")
    ] = None,
    opset: Annotated[int | None, _opt("opset", "ONNX opset.")] = None,
    exporter: Annotated[
        str | None,
        _opt(
            "exporter",
            "ONNX exporter: auto (dynamo, falling back to the TorchScript-based one), dynamo or torchscript.",
        ),
    ] = None,
    int8: Annotated[
        bool | None,
        _opt(
            "int8",
            "Also write <out stem>.int8.onnx (ONNX Runtime static quantisation), calibrated on the "
            "training split and checked against fp32 on the validation split.",
            "--int8",
        ),
    ] = None,
    calibration_images: Annotated[
        int | None, _opt("calibration_images", "Training images to calibrate INT8 on.")
    ] = None,
    data_dir: Annotated[
        Path | None, _opt("data_dir", "Prepared data folder for --int8.", unset="the checkpoint's")
    ] = None,
    config: base.ConfigOpt = None,
    sets: Annotated[list[str] | None, base.set_option(ExportSettings, "atol=1e-4")] = None,
    print_config: base.PrintConfigOpt = False,
) -> None:
    """Export a checkpoint with a dynamic batch axis, check it, and write a sidecar JSON beside it.

    The check runs the file on image-like inputs at two batch sizes against the eager network.

    It prints the max absolute difference of probabilities and the Dice of the masks (threshold 0.5).

    Beyond tolerance it is an error and the file is removed.

    With --int8 the quantised file is checked on the validation split: its mDice against the ground
    truth at most 0.01 below the fp32 file's (--set int8_max_mdice_drop), and its masks agreeing with
    fp32's at mean Dice >= 0.95 (--set int8_min_dice). Otherwise it is removed and the command fails.

    The sidecar (<out>.json) records input size, normalisation, threshold and output = logits.
    """
    settings = base.resolve_settings(ExportSettings, export_command, locals())
    base.setup_logging()
    from microaunet_cli.export import export_checkpoint  # torch: only once settings are valid

    result = export_checkpoint(settings)
    console.print(_parity_table(result))
    opset_note = f", opset {result.written.opset}" if result.written.opset else ""
    h, w = result.input_size
    console.print(
        f"wrote [bold]{result.out}[/] ({result.model}, {h}×{w}, dynamic batch{opset_note}) "
        f"and [bold]{result.sidecar}[/]"
    )
    if result.int8 is not None:
        a = result.int8.agreement
        console.print(
            f"wrote [bold]{result.int8.out}[/] (INT8, calibrated on {result.int8.calibration_images} "
            f"training images): on {a.n_images} {a.split} images, mDice {a.int8_mdice:.4f} against "
            f"fp32's {a.fp32_mdice:.4f}; masks agree with fp32's at mean Dice {a.mean_dice:.4f} "
            f"(worst {a.min_dice:.4f})"
        )
    console.print("the output is logits: apply a sigmoid, then threshold at 0.5")
