"""Entry point: importing a command module registers its command on the shared app."""

from __future__ import annotations

from microaunet_cli.cli import benchmark_cmd  # noqa: F401
from microaunet_cli.cli import config_cmd  # noqa: F401
from microaunet_cli.cli import demo_cmd  # noqa: F401
from microaunet_cli.cli import evaluate_cmd  # noqa: F401
from microaunet_cli.cli import export_cmd  # noqa: F401
from microaunet_cli.cli import models_cmd  # noqa: F401
from microaunet_cli.cli import predict_cmd  # noqa: F401
from microaunet_cli.cli import prepare_cmd  # noqa: F401
from microaunet_cli.cli import train_cmd  # noqa: F401
from microaunet_cli.cli.base import app


def main() -> None:
    app()


__all__ = ["app", "main"]
