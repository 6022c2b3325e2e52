"""``microaunet train-teacher`` and ``microaunet distill``: the same options, a different objective."""

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
from microaunet_cli.config import RunSettings

Dataset = Annotated[str | None, typer.Option("--dataset", "-d", help="synthetic, kvasir, cvc or polyp-mix.")]
Model = Annotated[str | None, typer.Option("--model", "-m", help="Registered network (see `microaunet models`).")]
Epochs = Annotated[int | None, typer.Option("--epochs", help="Number of epochs.")]
Batch = Annotated[int | None, typer.Option("--batch-size", "-b", help="Batch size per process.")]
Lr = Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")]
Device = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
Amp = Annotated[str | None, typer.Option("--amp", help="Mixed precision: auto, bf16, fp16 or off.")]
Compile = Annotated[bool | None, typer.Option("--compile/--no-compile", help="torch.compile the training step.")]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed.")]
Deterministic = Annotated[bool | None, typer.Option("--deterministic/--no-deterministic",
                                                    help="Bit-for-bit repeatable runs.")]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Prepared data folder (default data/<dataset>).")]
Size = Annotated[int | None, typer.Option("--size", help="Expected input size (must match the prepared data).")]
Fold = Annotated[int | None, typer.Option("--fold", help="Fold index for data prepared with the kfold policy.")]
Name = Annotated[str | None, typer.Option("--name", help="Run folder name under runs/.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in runs/<name> from its last.pt.")]
Overwrite = Annotated[bool | None, typer.Option("--overwrite", help="Replace an existing run folder.")]
Quiet = Annotated[bool | None, typer.Option("--quiet", "-q", help="Only warnings and errors.")]
Teacher = Annotated[Path | None, typer.Option("--teacher", help="Teacher checkpoint (default: the train-teacher "
                                              "run of the same data set, runs/<dataset>-malunet/checkpoints/best.pt).")]


def _options(**named: Any) -> dict[str, Any]:
    keys = {"dataset": "data.dataset", "model": "model.name", "epochs": "train.epochs",
            "batch_size": "train.batch_size", "lr": "optim.lr", "device": "train.device", "amp": "train.amp",
            "compile": "train.compile", "seed": "train.seed", "deterministic": "train.deterministic",
            "data_dir": "data.prepared_dir", "size": "data.size", "fold": "data.fold", "name": "output.name",
            "overwrite": "output.overwrite", "quiet": "output.quiet", "teacher": "distill.teacher"}
    return {keys[k]: v for k, v in named.items()}


@app.command("train-teacher")
@guarded
def train_teacher_command(
    dataset: Dataset = None, model: Model = None, epochs: Epochs = None, batch_size: Batch = None, lr: Lr = None,
    device: Device = None, amp: Amp = None, compile: Compile = None, seed: Seed = None,
    deterministic: Deterministic = None, data_dir: DataDir = None, size: Size = None, fold: Fold = None,
    name: Name = None, resume: Resume = False, overwrite: Overwrite = None, quiet: Quiet = None,
    config: ConfigOpt = None, sets: SetOpt = None, print_config: PrintConfigOpt = False,
) -> None:
    """Train a network (MALUNet by default) with BCE + Dice on prepared data; writes runs/<name>/."""
    from microaunet_cli.training.runner import train_teacher

    options = _options(dataset=dataset, model=model, epochs=epochs, batch_size=batch_size, lr=lr, device=device,
                       amp=amp, compile=compile, seed=seed, deterministic=deterministic, data_dir=data_dir,
                       size=size, fold=fold, name=name, overwrite=overwrite, quiet=quiet)
    settings = resolve_settings(RunSettings, config=config, sets=sets, options=options, print_config=print_config)
    setup_logging(settings.output.quiet)
    _report(train_teacher(settings, resume=resume), settings.output.quiet)


@app.command("distill")
@guarded
def distill_command(
    dataset: Dataset = None, model: Model = None, teacher: Teacher = None, epochs: Epochs = None,
    batch_size: Batch = None, lr: Lr = None, device: Device = None, amp: Amp = None, compile: Compile = None,
    seed: Seed = None, deterministic: Deterministic = None, data_dir: DataDir = None, size: Size = None,
    fold: Fold = None, name: Name = None, resume: Resume = False, overwrite: Overwrite = None,
    quiet: Quiet = None, config: ConfigOpt = None, sets: SetOpt = None, print_config: PrintConfigOpt = False,
) -> None:
    """Distil a trained teacher into a student (default microaunet_rt): imitation (KL + features), then preference
    distillation (pixel InfoNCE + L2)."""
    from microaunet_cli.training.runner import distill

    options = _options(dataset=dataset, model=model, teacher=teacher, epochs=epochs, batch_size=batch_size, lr=lr,
                       device=device, amp=amp, compile=compile, seed=seed, deterministic=deterministic,
                       data_dir=data_dir, size=size, fold=fold, name=name, overwrite=overwrite, quiet=quiet)
    settings = resolve_settings(RunSettings, config=config, sets=sets, options=options, print_config=print_config,
                                preset={"model": {"name": "microaunet_rt"}})
    setup_logging(settings.output.quiet)
    _report(distill(settings, resume=resume), settings.output.quiet)


def _report(summary: dict[str, Any], quiet: bool) -> None:
    if summary.get("rank", 0) != 0:
        return  # under torchrun only the first process reports
    if summary["status"] != "completed":
        console.print(f"[yellow]stopped at epoch {summary['epochs_done']}/{summary['epochs']}[/]: "
                      f"resume with --resume ({summary['checkpoint_last']})")
        return
    if quiet:
        return
    table = Table(title=f"{summary['model']} on {summary['dataset']}: best epoch {summary['best_epoch']}")
    for col in ("split", "mDice", "mIoU", "MAE", "Dice (pooled)", "IoU (pooled)"):
        table.add_column(col, justify="right" if col != "split" else "left")
    if summary.get("best_val_mdice") is not None:
        table.add_row("val (best)", f"{summary['best_val_mdice']:.4f}", "", "", "", "")
    for split, m in summary.get("test", {}).items():
        pi, po = m["per_image"], m["pooled"]
        table.add_row(split, f"{pi['mdice']:.4f}", f"{pi['miou']:.4f}", f"{pi['mae']:.4f}",
                      f"{po['dice']:.4f}", f"{po['iou']:.4f}")
    console.print(table)
    console.print(f"checkpoint: {summary['checkpoint_best']}  ({summary['wall_seconds']:.0f} s)")
