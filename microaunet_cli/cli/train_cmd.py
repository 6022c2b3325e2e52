"""``microaunet train-teacher`` and ``microaunet distill``: the same options, a different objective."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from microaunet_cli.cli import base
from microaunet_cli.config import RunSettings
from microaunet_cli.config.presets import DISTILL_PRESET
from microaunet_cli.datasets import dataset_help

if TYPE_CHECKING:
    from microaunet_cli.training.summary import TrainingSummary

_DATA, _TRAINING, _SWITCHES, _RUN = "Data", "Training", "Switches", "Run folder"


def _opt(key: str, help: str, *names: str, panel: str = _TRAINING, **kwargs: Any) -> Any:
    return base.setting_option(RunSettings, key, help, *names, rich_help_panel=panel, **kwargs)


Dataset = Annotated[str | None, _opt("data.dataset", dataset_help(), "--dataset", "-d", panel=_DATA)]
_MODEL_HELP = "Registered network (see `microaunet models`)."
Model = Annotated[str | None, _opt("model.name", _MODEL_HELP, "--model", "-m")]
StudentModel = Annotated[str | None, _opt("model.name", _MODEL_HELP, "--model", "-m", preset=DISTILL_PRESET)]
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
        "Teacher checkpoint, or shipped weights by name (e.g. malunet-polyp; see `microaunet models`).",
        "--teacher",
        panel="Teacher",
        unset="checkpoints/best.pt of runs/<dataset>-<teacher network>, the train-teacher run of the same "
        "data set (the teacher network: see `microaunet models`)",
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
Threads = Annotated[
    int | None, base.threads_option(RunSettings, "train.num_threads", rich_help_panel=_TRAINING)
]
SetOpt = Annotated[list[str] | None, base.set_option(RunSettings, "schedule.warmup_epochs=5")]


def _option(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def _options(model: Any, *teacher: inspect.Parameter) -> inspect.Signature:
    """The options of a training command, declared once for both: ``model`` (its default differs) and,
    for distill, the teacher options (they have a help panel of their own)."""
    return inspect.Signature(
        [
            _option("dataset", Dataset),
            _option("model", model),
            *teacher,
            _option("epochs", Epochs),
            _option("batch_size", Batch),
            _option("lr", Lr),
            _option("device", Device),
            _option("amp", Amp),
            _option("compile", Compile),
            _option("seed", Seed),
            _option("deterministic", Deterministic),
            _option("data_dir", DataDir),
            _option("size", Size),
            _option("fold", Fold),
            _option("name", Name),
            _option("resume", Resume, False),
            _option("overwrite", Overwrite),
            _option("quiet", Quiet),
            _option("seeds", Seeds),
            _option("threads", Threads),
            _option("config", base.ConfigOpt),
            _option("sets", SetOpt),
            _option("print_config", base.PrintConfigOpt, False),
        ]
    )


def _training_command(
    name: str, training: str, options: inspect.Signature, doc: str, preset: dict[str, Any] | None = None
) -> Callable[..., None]:
    """Register the command ``name``: ``options`` resolved into settings, then one run per seed of
    ``training`` (supervised: train-teacher, distilled: distill)."""

    def train(**arguments: Any) -> None:
        settings = base.resolve_settings(RunSettings, train, arguments, preset=preset)
        base.setup_logging(settings.output.quiet)
        _run(settings, training, arguments["resume"], arguments["seeds"])

    train.__signature__ = options  # type: ignore[attr-defined]  # what Typer reads the options from
    train.__doc__ = doc
    train.__name__ = train.__qualname__ = f"{name.replace('-', '_')}_command"
    return base.command(name)(train)


train_teacher_command = _training_command(
    "train-teacher",
    "supervised",
    _options(Model),
    "Train a network (MALUNet by default) with BCE + Dice on prepared data; writes runs/<name>/.",
)
distill_command = _training_command(
    "distill",
    "distilled",
    _options(
        StudentModel,
        _option("teacher", Teacher),
        _option("allow_any_teacher", AnyTeacher),
        _option("allow_teacher_mismatch", AllowMismatch),
    ),
    """Distil a trained teacher into a student (default microaunet_rt): imitation (KL + features), then
    preference distillation (pixel InfoNCE + L2).""",
    preset=DISTILL_PRESET,
)


def _run(settings: RunSettings, training: str, resume: bool, seeds: str | None) -> None:
    """One run, or one per seed (each in its own folder) when --seeds is given."""
    from microaunet_cli.training import runner
    from microaunet_cli.training.seeds import parse_seeds, seeded_settings

    train = runner.train_teacher if training == "supervised" else runner.distill
    if seeds is None:
        _report(train(settings, resume=resume), settings.output.quiet)
        return
    base_name = settings.output.name or runner.default_run_name(settings, training)
    folders = []
    for seed in parse_seeds(seeds):
        seeded = seeded_settings(settings, seed, base_name, training)
        folder = str(seeded.output.runs_dir / seeded.output.name)
        base.console.print(f"[bold]seed {seed}[/]: {folder}", highlight=False, soft_wrap=True)
        _report(train(seeded, resume=resume), settings.output.quiet)
        folders.append(folder)
    base.console.print(f"summarise: microaunet report {' '.join(folders)}", highlight=False, soft_wrap=True)


def _report(summary: TrainingSummary, quiet: bool) -> None:
    if summary.interrupted:
        _report_stop(summary)
    if quiet or summary.rank != 0:
        return  # under torchrun only the first process reports
    table = Table(title=f"{summary.model} on {summary.dataset}: best epoch {summary.best_epoch}")
    for col in ("split", "mDice", "mIoU", "MAE", "Dice (pooled)", "IoU (pooled)"):
        table.add_column(col, justify="right" if col != "split" else "left")
    if summary.best_val_mdice is not None:
        table.add_row("val (best)", f"{summary.best_val_mdice:.4f}", "", "", "", "")
    for split, m in summary.test.items():
        pi, po = m["per_image"], m["pooled"]
        table.add_row(
            split,
            f"{pi['mdice']:.4f}",
            f"{pi['miou']:.4f}",
            f"{pi['mae']:.4f}",
            f"{po['dice']:.4f}",
            f"{po['iou']:.4f}",
        )
    base.console.print(table)
    resolutions = {m.get("resolution", "") for m in summary.test.values()}
    base.console.print(
        f"test scores at {' / '.join(sorted(resolutions))} resolution, validation at the training size; "
        f"checkpoint: {summary.checkpoint_best}  ({summary.wall_seconds:.0f} s)"
    )


def _report_stop(summary: TrainingSummary) -> None:
    """Say where the run stopped and how to continue it; exit 128 + the signal's number (not 0)."""
    from microaunet_cli.training.signals import stop_exit_code

    if summary.rank == 0:
        base.err_console.print(
            f"[yellow]stopped by {summary.stopped_by or 'a stop signal'}[/] at epoch "
            f"{summary.epochs_done}/{summary.epochs}; saved {summary.checkpoint_last}. "
            f"Continue with the same command and --resume.",
            highlight=False,
            soft_wrap=True,
        )
    raise typer.Exit(stop_exit_code(summary.stopped_by))
