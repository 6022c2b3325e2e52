"""``microaunet config``: resolve and validate training settings without running anything."""

from __future__ import annotations

from typing import Annotated

from microaunet_cli.cli import base
from microaunet_cli.config import RunSettings


@base.command("config")
def config_command(
    config: base.ConfigOpt = None,
    sets: Annotated[list[str] | None, base.set_option(RunSettings, "schedule.warmup_epochs=5")] = None,
) -> None:
    """Validate a settings file (plus environment and --set overrides) and print the resolved YAML."""
    base.resolve_settings(RunSettings, config_command, {**locals(), "print_config": True})
