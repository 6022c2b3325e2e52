"""``microaunet prepare-data``: turn a downloaded data set into the arrays every other command reads."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from microaunet_cli.cli import base
from microaunet_cli.cli.base import console
from microaunet_cli.data.settings import PrepareSettings
from microaunet_cli.datasets import dataset_help

if TYPE_CHECKING:
    from microaunet_cli.data import PrepareResult

_opt = partial(base.setting_option, PrepareSettings)


@base.command("prepare-data")
def prepare_data_command(
    dataset: Annotated[str | None, _opt("dataset", dataset_help())] = None,
    src: Annotated[
        Path | None,
        _opt(
            "src",
            "Folder as downloaded (polyp-mix: the folder holding both). Synthetic: where to generate.",
            unset="synthetic: <out>/raw",
        ),
    ] = None,
    out: Annotated[Path | None, _opt("out", "Output folder.", unset="data/<dataset>")] = None,
    split: Annotated[
        str | None,
        _opt("split", "pranet, random, sequence, predefined or kfold.", unset="pranet; random for synthetic"),
    ] = None,
    size: Annotated[int | None, _opt("size", "Square side of the stored arrays (multiple of 32).")] = None,
    seed: Annotated[int | None, _opt("seed", "Seed of the random splits and the synthetic set.")] = None,
    val_fraction: Annotated[
        float | None, _opt("val_fraction", "Share of the training side held out for validation.")
    ] = None,
    test_fraction: Annotated[
        float | None,
        _opt("test_fraction", "random/sequence/kfold: share of all images held out for testing."),
    ] = None,
    folds: Annotated[int | None, _opt("folds", "kfold: number of folds.")] = None,
    count: Annotated[int | None, _opt("synthetic_count", "synthetic: number of images to generate.")] = None,
    workers: Annotated[
        int | None, _opt("workers", "Decoding processes.", unset="all cores, at most 8")
    ] = None,
    skip_bad: Annotated[
        bool | None,
        _opt(
            "skip_bad", "Leave out unusable files (listed in the manifest) instead of stopping.", "--skip-bad"
        ),
    ] = None,
    force: Annotated[bool | None, _opt("force", "Prepare again even if up to date.", "--force")] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only warnings and errors.", metavar="")
    ] = False,
    config: base.ConfigOpt = None,
    sets: Annotated[list[str] | None, base.set_option(PrepareSettings, "folds=10")] = None,
    print_config: base.PrintConfigOpt = False,
) -> None:
    """Read Kvasir-SEG / CVC-ClinicDB as downloaded (or generate the synthetic set), split it, and
    store train/val/test arrays with a manifest. Re-running with the same inputs does nothing."""
    settings = base.resolve_settings(PrepareSettings, prepare_data_command, locals())
    base.setup_logging(quiet)
    from microaunet_cli.data import prepare_dataset  # numpy and OpenCV: only once settings are valid

    result = prepare_dataset(settings)
    if not quiet:
        _summary(result)


def _summary(result: PrepareResult) -> None:
    manifest = result.manifest
    state = "already up to date" if result.unchanged else f"prepared in {result.seconds:.1f} s"
    layouts = ", ".join(f"{part}: {name}" for part, name in manifest["layout"].items())
    table = Table(title=f"{result.out} — {state}")
    table.add_column("split", style="bold")
    table.add_column("images", justify="right")
    for name, n in result.counts.items():
        table.add_row(name, str(n))
    console.print(table)
    console.print(
        f"layout {layouts}; policy {manifest['policy']}; size {manifest['size']}; "
        f"train mean {manifest['mean']} std {manifest['std']}",
        highlight=False,
    )
    if manifest.get("kfold"):
        console.print(
            f"{manifest['kfold']['k']} folds of train/: choose the validation fold with "
            f"--set data.fold=K when training",
            highlight=False,
        )
    if result.skipped:
        console.print(f"[yellow]{len(result.skipped)} file(s) left out[/]; see {result.out}/manifest.json")
