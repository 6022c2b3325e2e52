"""``microaunet config``: resolve and validate training settings without running anything."""

from __future__ import annotations

from microaunet_cli.cli.base import ConfigOpt, SetOpt, app, guarded, resolve_settings
from microaunet_cli.config import RunSettings


@app.command("config")
@guarded
def config_command(config: ConfigOpt = None, sets: SetOpt = None) -> None:
    """Validate a settings file (plus environment and --set overrides) and print the resolved YAML."""
    resolve_settings(RunSettings, config=config, sets=sets, options={}, print_config=True)


