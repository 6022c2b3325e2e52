"""``microaunet train-teacher`` and ``microaunet distill``: the same options, a different objective."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from microaunet_cli.cli.base import (
    ConfigOpt,
    PrintConfigOpt,
    command,
    console,
    err_console,
    resolve_settings,
    set_option,
    setting_option,
    setup_logging,
    threads_option,
)
from microaunet_cli.config import RunSettings
from microaunet_cli.datasets import dataset_help
from microaunet_cli.models import DEFAULT_STUDENT

_DISTILL_PRESET = {"model": {"name": DEFAULT_STUDENT}}
_DATA, _TRAINING, _SWITCHES, _RUN = "Data", "Training", "Switches", "Run folder"


def _opt(key: str, help: str, *names: str, panel: str = _TRAINING, **kwargs: Any) -> Any:
    return setting_option(RunSettings, key, help, *names, rich_help_panel=panel, **kwargs)


Dataset = Annotated[str | None, _opt("data.dataset", dataset_help(), "--dataset", "-d", panel=_DATA)]
_MODEL_HELP = "Registered network (see `microaunet models`)."
Model = Annotated[str | None, _opt("model.name", _MODEL_HELP, "--model", "-m")]
StudentModel = Annotated[str | None, _opt("model.name", _MODEL_HELP, "--model", "-m", preset=_DISTILL_PRESET)]
Epochs = Annotated[int | None, _opt("train.epochs", "Number of epochs.", "--epochs")]
Batch = Annotated[int | None, _opt("train.batch_size", "Batch size per process.", "--batch-size", "-b")]
Lr = Annotated[float | None, _opt("optim.lr", "Peak learning rate.", "--lr")]
Device = Annotated[str | None, _opt("train.device", "auto, cpu, cuda, cuda:N or mps.", "--device")]
Amp = Annotated[str | None, _opt("train.amp", "Mixed precision: auto, bf16, fp16 or off.", "--amp")]
# The on/off pairs have a panel of their own: their two long names would narrow every other row's help.
Compile = Annotated[
    bool | None,
    _opt("train.compile", "torch.compile the training step.", "--compile/--no-compile", panel=_SWITCHES),
]
Seed = Annotated[int | None, _opt("train.seed", "Random seed.", "--seed")]
Deterministic = Annotated[
    bool | None,
    _opt(
        "train.deterministic",
        "Bit-for-bit repeatable runs.",
        "--deterministic/--no-deterministic",
        panel=_SWITCHES,
    ),
]
DataDir = Annotated[
    Path | None,
    _opt("data.prepared_dir", "Prepared data folder.", "--data-dir", panel=_DATA, unset="data/<dataset>"),
]
Size = Annotated[
    int | None,
    _opt(
        "data.size",
        "Expected input size (must match the prepared data).",
        "--size",
        panel=_DATA,
        unset="the prepared data's",
    ),
]
Fold = Annotated[
    int | None,
    _opt("data.fold", "Fold index for data prepared with the kfold policy.", "--fold", panel=_DATA),
]
Name = Annotated[
    str | None,
    _opt(
        "output.name",
        "Run folder name under runs/.",
        "--name",
        panel=_RUN,
        unset="<dataset>-<model>[-distill]",
    ),
]
Resume = Annotated[
    bool,
    typer.Option(
        "--resume", help="Continue the run in runs/<name> from its last.pt.", metavar="", rich_help_panel=_RUN
    ),
]
Overwrite = Annotated[
    bool | None, _opt("output.overwrite", "Replace an existing run folder.", "--overwrite", panel=_RUN)
]
Quiet = Annotated[bool | None, _opt("output.quiet", "Only warnings and errors.", "--quiet", "-q", panel=_RUN)]
Seeds = Annotated[
    str | None,
    typer.Option(
        "--seeds",
        help="Run the recipe once per seed, in sequence, each in runs/<name>-s<seed>/ (e.g. --seeds 0,1,2); "
        "summarise them with `microaunet report`.",
        rich_help_panel=_RUN,
    ),
]
AllowMismatch = Annotated[
    bool | None,
    _opt(
        "distill.allow_teacher_mismatch",
        "Use a teacher trained on other data (split, seed, size or fold) than this run; recorded in the run.",
        "--allow-teacher-mismatch",
        panel="Teacher",
    ),
]
Teacher = Annotated[
    Path | None,
    _opt(
        "distill.teacher",
        "Teacher checkpoint.",
        "--teacher",
        panel="Teacher",
        unset="checkpoints/best.pt of runs/<dataset>-malunet, the train-teacher run of the same data set",
    ),
]
AnyTeacher = Annotated[
    bool | None,
    _opt(
        "distill.allow_any_teacher",
        "Accept a teacher checkpoint whose network is not registered as a teacher (recorded in the run).",
        "--allow-any-teacher",
        panel="Teacher",
    ),
]
Threads = Annotated[int | None, threads_option(RunSettings, "train.num_threads", rich_help_panel=_TRAINING)]
SetOpt = Annotated[list[str] | None, set_option(RunSettings, "schedule.warmup_epochs=5")]


_SETTING_OF_OPTION = {
    "dataset": "data.dataset",
    "model": "model.name",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "optim.lr",
    "device": "train.device",
    "amp": "train.amp",
    "compile": "train.compile",
    "seed": "train.seed",
    "deterministic": "train.deterministic",
    "data_dir": "data.prepared_dir",
    "size": "data.size",
    "fold": "data.fold",
    "name": "output.name",
    "overwrite": "output.overwrite",
    "quiet": "output.quiet",
    "teacher": "distill.teacher",
    "allow_any_teacher": "distill.allow_any_teacher",
    "allow_teacher_mismatch": "distill.allow_teacher_mismatch",
    "threads": "train.num_threads",
}


def _options(arguments: dict[str, Any]) -> dict[str, Any]:
    """The command's arguments that are settings, under their setting keys (None: not given)."""
    return {key: arguments[name] for name, key in _SETTING_OF_OPTION.items() if name in arguments}


@command("train-teacher")
def train_teacher_command(
    dataset: Dataset = None,
    model: Model = None,
    epochs: Epochs = None,
    batch_size: Batch = None,
    lr: Lr = None,
    device: Device = None,
    amp: Amp = None,
    compile: Compile = None,
    seed: Seed = None,
    deterministic: Deterministic = None,
    data_dir: DataDir = None,
    size: Size = None,
    fold: Fold = None,
    name: Name = None,
    resume: Resume = False,
    overwrite: Overwrite = None,
    quiet: Quiet = None,
    seeds: Seeds = None,
    threads: Threads = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    print_config: PrintConfigOpt = False,
) -> None:
    """Train a network (MALUNet by default) with BCE + Dice on prepared data; writes runs/<name>/."""
    from microaunet_cli.training.runner import train_teacher

    options = _options(locals())
    settings = resolve_settings(
        RunSettings, config=config, sets=sets, options=options, print_config=print_config
    )
    setup_logging(settings.output.quiet)
    _run(train_teacher, settings, "supervised", resume, seeds)


@command("distill")
def distill_command(
    dataset: Dataset = None,
    model: StudentModel = None,
    teacher: Teacher = None,
    allow_any_teacher: AnyTeacher = None,
    epochs: Epochs = None,
    batch_size: Batch = None,
    lr: Lr = None,
    device: Device = None,
    amp: Amp = None,
    compile: Compile = None,
    seed: Seed = None,
    deterministic: Deterministic = None,
    data_dir: DataDir = None,
    size: Size = None,
    fold: Fold = None,
    name: Name = None,
    resume: Resume = False,
    overwrite: Overwrite = None,
    quiet: Quiet = None,
    seeds: Seeds = None,
    threads: Threads = None,
    allow_teacher_mismatch: AllowMismatch = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    print_config: PrintConfigOpt = False,
) -> None:
    """Distil a trained teacher into a student (default microaunet_rt): imitation (KL + features), then
    preference distillation (pixel InfoNCE + L2)."""
    from microaunet_cli.training.runner import distill

    options = _options(locals())
    settings = resolve_settings(
        RunSettings,
        config=config,
        sets=sets,
        options=options,
        print_config=print_config,
        preset=_DISTILL_PRESET,
    )
    setup_logging(settings.output.quiet)
    _run(distill, settings, "distilled", resume, seeds)


def _run(train: Any, settings: RunSettings, kind: str, resume: bool, seeds: str | None) -> None:
    """One run, or one per seed (each in its own folder) when --seeds is given."""
    from microaunet_cli.training.runner import default_run_name
    from microaunet_cli.training.seeds import parse_seeds, seeded_settings

    if seeds is None:
        _report(train(settings, resume=resume), settings.output.quiet)
        return
    base = settings.output.name or default_run_name(settings, kind)
    folders = []
    for seed in parse_seeds(seeds):
        seeded = seeded_settings(settings, seed, base, kind)
        folder = str(seeded.output.runs_dir / seeded.output.name)
        console.print(f"[bold]seed {seed}[/]: {folder}", highlight=False, soft_wrap=True)
        _report(train(seeded, resume=resume), settings.output.quiet)
        folders.append(folder)
    console.print(f"summarise: microaunet report {' '.join(folders)}", highlight=False, soft_wrap=True)


def _report(summary: dict[str, Any], quiet: bool) -> None:
    if summary["interrupted"]:
        _report_stop(summary)
    if quiet or summary.get("rank", 0) != 0:
        return  # under torchrun only the first process reports
    table = Table(title=f"{summary['model']} on {summary['dataset']}: best epoch {summary['best_epoch']}")
    for col in ("split", "mDice", "mIoU", "MAE", "Dice (pooled)", "IoU (pooled)"):
        table.add_column(col, justify="right" if col != "split" else "left")
    if summary.get("best_val_mdice") is not None:
        table.add_row("val (best)", f"{summary['best_val_mdice']:.4f}", "", "", "", "")
    for split, m in summary.get("test", {}).items():
        pi, po = m["per_image"], m["pooled"]
        table.add_row(
            split,
            f"{pi['mdice']:.4f}",
            f"{pi['miou']:.4f}",
            f"{pi['mae']:.4f}",
            f"{po['dice']:.4f}",
            f"{po['iou']:.4f}",
        )
    console.print(table)
    resolutions = {m.get("resolution", "") for m in summary.get("test", {}).values()}
    console.print(
        f"test scores at {' / '.join(sorted(resolutions))} resolution, validation at the training size; "
        f"checkpoint: {summary['checkpoint_best']}  ({summary['wall_seconds']:.0f} s)"
    )


def _report_stop(summary: dict[str, Any]) -> None:
    """Say where the run stopped and how to continue it; exit 128 + the signal's number (not 0)."""
    from microaunet_cli.training.signals import stop_exit_code

    if summary.get("rank", 0) == 0:
        err_console.print(
            f"[yellow]stopped by {summary['stopped_by'] or 'a stop signal'}[/] at epoch "
            f"{summary['epochs_done']}/{summary['epochs']}; saved {summary['checkpoint_last']}. "
            f"Continue with the same command and --resume.",
            highlight=False,
            soft_wrap=True,
        )
    raise typer.Exit(stop_exit_code(summary["stopped_by"]))
