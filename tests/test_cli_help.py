"""Each command's --help: defaults from the settings, a --set example that fits, readable at 80 columns."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from typing import Any, get_args

import pytest
import typer.main
import yaml
from typer.models import OptionInfo
from typer.testing import CliRunner

from microaunet_cli.cli.app import app

runner = CliRunner()
# Command -> the arguments it needs before --print-config can resolve its settings.
COMMANDS: dict[str, list[str]] = {
    "train-teacher": [],
    "distill": [],
    "prepare-data": [],
    "evaluate": ["--ckpt", "run/best.pt"],
    "predict": ["--input", "images", "--out", "masks"],
    "export": [],
    "benchmark": [],
    "demo": [],
    "config": [],
}
MIN_HELP_WIDTH = 30  # characters of description per line at COLUMNS=80
_DEFAULT = re.compile(r"\\\[default: (.*?)\]")


def _params(command: str) -> list[Any]:
    return typer.main.get_command(app).commands[command].params


def _resolved(command: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    args = [command, *COMMANDS[command], *extra] + ([] if command == "config" else ["--print-config"])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.output)


def _at(settings: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        settings = settings[part]
    return settings


def _as_shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def test_every_command_with_settings_is_covered():
    with_set = {
        name
        for name, cmd in typer.main.get_command(app).commands.items()
        if any(p.name == "sets" for p in cmd.params)
    }
    assert with_set == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_shown_defaults_are_the_settings_defaults(command: str):
    resolved = _resolved(command)
    checked = 0
    for param in _params(command):
        shown = _DEFAULT.findall(param.help or "")
        if not shown:
            continue
        key = _settings_key(command, param.name)
        assert key is not None, f"{command} {param.opts}: a default typed by hand; use base.setting_option"
        value = _at(resolved, key)
        if value is None or value == []:
            continue  # the help says in words what an unset value means
        assert shown == [_as_shown(value)], f"{command} {param.opts}: shows {shown}, settings say {value!r}"
        checked += 1
    assert checked >= 1 or command == "config"  # config has no options besides --config and --set


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_set_example_is_a_setting_of_this_command(command: str):
    sets = next(p for p in _params(command) if p.name == "sets")
    example = re.search(r"--set (\S+)", sets.help).group(1)
    key, _, value = example.partition("=")
    resolved = _resolved(command, ("--set", example))
    assert str(_at(resolved, key)) == value or _at(resolved, key) == pytest.approx(float(value))
    assert _at(_resolved(command), key) != _at(resolved, key), "the example should change something"


@pytest.mark.parametrize("command", sorted([*COMMANDS, "report", "models"]))
def test_help_descriptions_stay_readable_at_80_columns(command: str):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│ ") and line.endswith("│")]
    assert rows and max(len(line) for line in result.output.splitlines()) <= 80
    for line in rows:
        inner = line[1:-1].rstrip()
        if not inner.lstrip().startswith(("-", "*")):
            continue  # a continuation line
        gaps = list(re.finditer(r" {2,}", inner))
        start = gaps[-1].end() if gaps else 0
        width = len(line) - 2 - start
        assert width >= MIN_HELP_WIDTH, f"{command}: description column {width} wide in\n{line}"


def _settings_key(command: str, name: str) -> str | None:
    """The settings field behind an option, as recorded by base.setting_option (None: a plain option)."""
    callback = next(c.callback for c in app.registered_commands if c.name == command)
    annotation = inspect.signature(callback, eval_str=True).parameters[name].annotation
    infos = [a for a in get_args(annotation)[1:] if isinstance(a, OptionInfo)]
    return getattr(infos[0], "settings_key", None) if infos else None


def test_every_command_is_registered_inside_the_error_guard():
    """base.command registers each command wrapped by base.guarded (functools.wraps sets __wrapped__)."""
    from microaunet_cli.cli.base import guarded

    unguarded = [
        c.name
        for c in app.registered_commands
        if getattr(c.callback, "__code__", None) is not guarded(lambda: None).__code__
    ]
    assert unguarded == []


# Runs each --help in a fresh interpreter, as the `microaunet` script does, and names the first one
# after which torch is loaded.
_HELP_PROBE = """
import sys
from microaunet_cli.cli.app import main

for command in sys.argv[1:]:
    sys.argv = ["microaunet", *command.split(), "--help"]
    try:
        main()
    except SystemExit as exc:
        assert exc.code == 0, f"{command} --help exited with {exc.code}"
    if "torch" in sys.modules:
        print("TORCH LOADED BY:", *sys.argv)
        break
"""


def test_help_answers_without_importing_torch():
    """Importing torch takes seconds: --help of the app and of every command must not need it (commands
    import the library, and with it torch, only when they run)."""
    commands = ["", *sorted(typer.main.get_command(app).commands)]
    result = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE, *commands],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TORCH LOADED BY" not in result.stdout, result.stdout.splitlines()[-1]
    assert result.stdout.count("Usage: microaunet") == len(commands)
