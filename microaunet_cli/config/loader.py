"""Resolve settings from layered sources, remembering where each value came from.

Order, later wins: code defaults <- command preset <- YAML file (``--config``) <- environment
(``MICROAUNET_SECTION__KEY=value``) <- named command-line options <- ``--set dotted.key=value``.
A validation error names the key, the source that set it and the allowed values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from microaunet_cli.errors import ConfigError

S = TypeVar("S", bound=BaseModel)
ENV_PREFIX = "MICROAUNET_"


class _Layers:
    """Merged nested dict plus a map from dotted key to the source that last set it."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}
        self.origin: dict[str, str] = {}

    def add(self, values: Mapping[str, Any], source: str) -> None:
        for key, value in _flatten(values):
            self.set(key, value, source)

    def set(self, dotted: str, value: Any, source: str) -> None:
        parts = dotted.split(".")
        node = self.tree
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
        # A value replaces whatever was recorded under it.
        for key in [k for k in self.origin if k == dotted or k.startswith(dotted + ".")]:
            del self.origin[key]
        self.origin[dotted] = source

    def source_of(self, dotted: str) -> str:
        if dotted in self.origin:
            return self.origin[dotted]
        below = [k for k in self.origin if k.startswith(dotted + ".")]
        if below:
            return self.origin[below[0]]
        parts = dotted.split(".")
        for i in range(len(parts) - 1, 0, -1):
            parent = ".".join(parts[:i])
            if parent in self.origin:
                return self.origin[parent]
        return "defaults"


def _flatten(values: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, dotted + ".")
        else:
            yield dotted, value


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a settings file; its errors name the file and the line."""
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist; pass an existing YAML file to --config "
            f"(see the files in configs/)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"config file {path}{where} is not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of sections (data:, model:, ...), "
            f"not a {type(data).__name__}"
        )
    return data


def parse_value(text: str) -> Any:
    """Parse a command-line or environment value as YAML scalar/list (``[8, 16]``, ``true``, ``1e-3``)."""
    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        return text


def parse_set(items: Iterable[str]) -> list[tuple[str, Any]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(
                f"--set {item!r} is not of the form dotted.key=value (for example --set optim.lr=5e-4)"
            )
        out.append((key, parse_value(value)))
    return out


def env_overrides(environ: Mapping[str, str], fields: Iterable[str]) -> list[tuple[str, Any, str]]:
    """``MICROAUNET_OPTIM__LR=5e-4`` sets ``optim.lr``, ``MICROAUNET_SIZE=128`` a top-level ``size``.

    Only variables naming a field of the settings being built count, so one environment can hold
    the settings of several commands (``MICROAUNET_TRAIN__EPOCHS`` does not disturb prepare-data).
    """
    fields = set(fields)
    out = []
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        if dotted.split(".", 1)[0] in fields:
            out.append((dotted, parse_value(value), f"environment {name}"))
    return out


def load_settings(
    cls: type[S],
    *,
    config: Path | None = None,
    preset: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> S:
    """Build validated settings of type ``cls`` from every source, in precedence order.

    ``options`` holds dotted keys of the named command-line options the user gave (None = not given).
    """
    layers = _Layers()
    if preset:
        layers.add(preset, "command defaults")
    if config is not None:
        layers.add(read_yaml(config), f"config file {config}")
    for dotted, value, source in env_overrides(os.environ if environ is None else environ, cls.model_fields):
        layers.set(dotted, value, source)
    for dotted, value in (options or {}).items():
        if value is not None:
            option = "--" + dotted.rsplit(".", 1)[-1].replace("_", "-")
            layers.set(dotted, value, f"option {option}")
    for dotted, value in parse_set(sets):
        layers.set(dotted, value, f"--set {dotted}")
    try:
        return cls.model_validate(layers.tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, cls, layers)) from None


def _describe(exc: ValidationError, cls: type[BaseModel], layers: _Layers) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
        dotted = ".".join(loc)
        source = layers.source_of(dotted)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(cls, loc[:-1])
            lines.append(f"unknown setting '{dotted}' (from {source}); allowed here: {', '.join(allowed)}")
        else:
            value = err.get("input")
            lines.append(f"invalid setting '{dotted}' = {value!r} (from {source}): {err['msg']}")
    return "\n".join(lines)


def _allowed_keys(cls: type[BaseModel], path: list[str]) -> list[str]:
    model: Any = cls
    for part in path:
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return []
        model = field.annotation
    return list(model.model_fields)


def settings_to_yaml(settings: BaseModel) -> str:
    """The resolved settings as YAML, in field order (what ``--print-config`` and run folders show)."""
    return yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)
