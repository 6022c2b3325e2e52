"""Entry point: importing a command module registers its command on the shared app."""

from __future__ import annotations

from microaunet_cli.cli import (
    benchmark_cmd,  # noqa: F401
    config_cmd,  # noqa: F401
    demo_cmd,  # noqa: F401
    evaluate_cmd,  # noqa: F401
    export_cmd,  # noqa: F401
    models_cmd,  # noqa: F401
    predict_cmd,  # noqa: F401
    prepare_cmd,  # noqa: F401
    report_cmd,  # noqa: F401
    train_cmd,  # noqa: F401
)
from microaunet_cli.cli.base import app


def main() -> None:
    app()


__all__ = ["app", "main"]
