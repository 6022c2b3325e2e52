"""``microaunet models``: the registered networks and their sizes, and the trained weights shipped
with the toolkit (usable by name wherever a command takes ``--ckpt``)."""

from __future__ import annotations

from rich.table import Table

from microaunet_cli.cli import base


@base.command("models")
def models_command() -> None:
    """List the registered networks (parameter counts at default settings) and the shipped trained
    weights, which every --ckpt option and microaunet_cli.load() accept by name."""
    from microaunet_cli.models import count_parameters, create_model, list_models, model_entry  # torch

    table = Table(title="Registered networks (default settings)")
    table.add_column("name", style="bold")
    table.add_column("role")
    table.add_column("parameters", justify="right")
    table.add_column("description")
    for name in list_models():
        entry = model_entry(name)
        total, _ = count_parameters(create_model(name))
        table.add_row(name, entry.role, f"{total:,}", entry.summary)
    base.console.print(table)
    _shipped_table()


def _describe(name: str) -> dict:
    """Network, data, size and test scores of shipped weights, from the file itself."""
    from microaunet_cli.checkpoints import load_checkpoint
    from microaunet_cli.weights import shipped_path

    ckpt = load_checkpoint(shipped_path(name))
    return {
        "model": ckpt["settings"]["model"]["name"],
        "training": ckpt.get("training"),
        "dataset": ckpt.get("dataset"),
        "size": ckpt.get("size"),
        "test": {split: scores.get("mdice") for split, scores in (ckpt.get("test") or {}).items()},
    }


def _shipped_table() -> None:
    from microaunet_cli.weights import shipped_names

    table = Table(title="Trained weights shipped with the toolkit (--ckpt NAME; research use only)")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("network", no_wrap=True)
    table.add_column("trained")
    table.add_column("test mDice (original resolution)")
    for name in shipped_names():
        d = _describe(name)
        scores = ", ".join(f"{split.removeprefix('test_')} {v:.3f}" for split, v in d["test"].items() if v)
        trained = f"{d['training'] or ''}, {d['dataset']} {d['size']} px"
        table.add_row(name, d["model"], trained, scores)
    base.console.print(table)
    base.console.print("Model cards: microaunet_cli/weights/NAME.md in the installed package.")
