"""``microaunet models``: the registered networks and their sizes."""

from __future__ import annotations

from rich.table import Table

from microaunet_cli.cli import base


@base.command("models")
def models_command() -> None:
    """List the registered networks with their parameter counts (default settings)."""
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
