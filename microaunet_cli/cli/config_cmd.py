"""``microaunet config``: resolve and validate training settings without running anything."""

from __future__ import annotations

from typing import Annotated

from microaunet_cli.cli.base import ConfigOpt, command, resolve_settings, set_option
from microaunet_cli.config import RunSettings


@command("config")
def config_command(
    config: ConfigOpt = None,
    sets: Annotated[list[str] | None, set_option(RunSettings, "schedule.warmup_epochs=5")] = None,
) -> None:
    """Validate a settings file (plus environment and --set overrides) and print the resolved YAML."""
    resolve_settings(RunSettings, config=config, sets=sets, options={}, print_config=True)
