"""The Typer app and what every command shares: settings options, error reporting, logging."""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from rich.console import Console
from typer.models import OptionInfo

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

F = TypeVar("F", bound=Callable[..., Any])
# The help panel of --config, --set and --print-config.
SETTINGS_PANEL = "Settings"


def command(name: str, **kwargs: Any) -> Callable[[F], F]:
    """Register a function as the command ``name``, inside the error guard."""

    def register(fn: F) -> F:
        wrapped = guarded(fn)
        app.command(name, **kwargs)(wrapped)
        return wrapped  # type: ignore[return-value]

    return register


def field_default(settings: type[BaseModel], key: str, preset: Mapping[str, Any] | None = None) -> Any:
    """The default of the settings field ``key`` ("train.epochs" looks in the train section), or the
    command's preset value for it. A KeyError names a key the settings do not have."""
    value = _lookup(preset or {}, key)
    if value is not _MISSING:
        return value
    *sections, name = key.split(".")
    cls: Any = settings
    for section in sections:
        cls = cls.model_fields[section].annotation
    return cls.model_fields[name].get_default(call_default_factory=True)


_MISSING = object()


def _lookup(tree: Mapping[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree


def shown_default(value: Any) -> str:
    """A settings value as the help shows it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def setting_option(
    settings: type[BaseModel],
    key: str,
    help: str,
    *names: str,
    unset: str | None = None,
    preset: Mapping[str, Any] | None = None,
    also: Sequence[str] = (),
    **kwargs: Any,
) -> Any:
    """An option that overrides the settings field ``key`` (and the fields ``also`` names); its help
    shows that field's default, so the two cannot drift apart. ``unset`` says what a None (or empty)
    default means ("the checkpoint's"). The option records its keys: :func:`resolve_settings` reads
    the command's settings from its options through them, so no second table maps one to the other."""
    default = field_default(settings, key, preset)
    if default is PydanticUndefined:  # a required setting: the option is required too
        shown = unset
    else:
        shown = unset if default is None or default == [] else shown_default(default)
    if shown is not None:  # typer's own show_default would wrap a text default in parentheses
        help = f"{help} \\[default: {shown}]"
    if isinstance(default, bool):
        kwargs.setdefault("metavar", "")  # a flag takes no value: leave the type column empty
    option = typer.Option(*names, help=help, show_default=False, **kwargs)
    option.settings_key = key  # type: ignore[attr-defined]
    option.settings_keys = (key, *also)  # type: ignore[attr-defined]
    return option


def set_option(settings: type[BaseModel], example: str) -> Any:
    """--set, with an example that is a field of this command's settings (checked here, at import)."""
    key, _, _ = example.partition("=")
    field_default(settings, key)  # a KeyError here means the example names no setting
    return typer.Option(
        "--set",
        help=f"Override any setting: --set {example} (repeatable; applied last).",
        metavar="KEY=VALUE",
        rich_help_panel=SETTINGS_PANEL,
    )


def threads_option(settings: type[BaseModel], key: str, **kwargs: Any) -> Any:
    """--threads: the CPU commands' thread count (benchmark has its own, with the same meaning)."""
    return setting_option(
        settings,
        key,
        "CPU threads for torch; give each job its share when several share a machine.",
        "--threads",
        unset="OMP_NUM_THREADS, else one per physical core",
        **kwargs,
    )


# Options shared by every command that takes settings, in their own help panel.
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML settings file (see configs/); overrides the built-in defaults.",
        rich_help_panel=SETTINGS_PANEL,
    ),
]
PrintConfigOpt = Annotated[
    bool,
    typer.Option(
        "--print-config",
        help="Print the resolved settings as YAML and exit.",
        metavar="",
        rich_help_panel=SETTINGS_PANEL,
    ),
]


def resolve_settings(
    cls: type[S],
    command: Callable[..., Any],
    arguments: Mapping[str, Any],
    preset: Mapping[str, Any] | None = None,
) -> S:
    """Validated settings from every source, given the ``arguments`` of ``command`` (its ``locals()``):
    ``--config``, the options made by :func:`setting_option`, ``--set``. With ``--print-config`` show
    them and stop."""
    settings = load_settings(
        cls,
        config=arguments.get("config"),
        preset=preset,
        options=setting_values(command, arguments),
        sets=arguments.get("sets") or [],
    )
    if arguments.get("print_config"):
        typer.echo(settings_to_yaml(settings), nl=False)
        raise typer.Exit(0)
    return settings


def setting_values(command: Callable[..., Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments that override settings, under their settings keys; an option not given (None, or
    an empty list) overrides nothing."""
    return {
        key: arguments[name]
        for name, keys in setting_keys(command).items()
        if arguments.get(name) is not None and arguments[name] != []
        for key in keys
    }


@functools.cache
def setting_keys(command: Callable[..., Any]) -> dict[str, tuple[str, ...]]:
    """Parameter name -> the settings keys its option overrides, as :func:`setting_option` recorded
    them on the option (parameters of other kinds are left out)."""
    keys = {}
    for name, param in inspect.signature(command, eval_str=True).parameters.items():
        for info in get_args(param.annotation)[1:]:
            if isinstance(info, OptionInfo) and hasattr(info, "settings_keys"):
                keys[name] = info.settings_keys
    return keys


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
        from rich.logging import RichHandler

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
