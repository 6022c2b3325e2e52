"""The Typer app and what every command shares: settings options, error reporting, logging."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.logging import RichHandler

from microaunet_cli.config import load_settings, settings_to_yaml
from microaunet_cli.errors import MicroAUNetError
from microaunet_cli.version import __version__

app = typer.Typer(
    name="microaunet",
    help="Train tiny, fast polyp segmentation networks by knowledge distillation "
    "(MALUNet teacher -> MicroAUNet student).",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

S = TypeVar("S", bound=BaseModel)

# Options shared by every command that takes settings.
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML settings file (see configs/); overrides the built-in defaults."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override any setting: --set optim.lr=5e-4 (repeatable; applied last)."),
]
PrintConfigOpt = Annotated[
    bool, typer.Option("--print-config", help="Print the resolved settings as YAML and exit.")
]
# The CPU commands' thread count (benchmark has its own, with the same meaning).
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", help="CPU threads for torch. \\[default: OMP_NUM_THREADS, else one per physical core; "
    "give each job its share when several share a machine]")]


def resolve_settings(
    cls: type[S],
    *,
    config: Path | None,
    sets: list[str] | None,
    options: Mapping[str, Any],
    print_config: bool = False,
    preset: Mapping[str, Any] | None = None,
) -> S:
    """Validated settings from every source; with ``print_config`` show them and stop."""
    settings = load_settings(cls, config=config, preset=preset, options=options, sets=sets or [])
    if print_config:
        typer.echo(settings_to_yaml(settings), nl=False)
        raise typer.Exit(0)
    return settings


def guarded(fn: Callable) -> Callable:
    """Turn user errors into one red line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MicroAUNetError as exc:
            for i, line in enumerate(str(exc).splitlines() or [type(exc).__name__]):
                prefix = "error: " if i == 0 else "       "
                err_console.print(f"[bold red]{prefix}[/]{line}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper


def setup_logging(quiet: bool = False) -> None:
    """Rich log lines on a terminal, plain timestamped lines otherwise (cluster logs)."""
    level = logging.WARNING if quiet else logging.INFO
    root = logging.getLogger("microaunet_cli")
    root.handlers.clear()
    root.setLevel(level)
    root.propagate = False
    if sys.stderr.isatty():
        handler: logging.Handler = RichHandler(console=err_console, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"microaunet {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Train tiny, fast polyp segmentation networks by knowledge distillation."""
