"""Validated settings: defined once in code, overridden by YAML, environment and command line."""

from microaunet_cli.config.loader import load_settings, settings_to_yaml
from microaunet_cli.config.settings import (
    AugmentSettings,
    DataSettings,
    DistillSettings,
    ModelSettings,
    OptimSettings,
    OutputSettings,
    RunSettings,
    ScheduleSettings,
    TrainSettings,
)

__all__ = [
    "AugmentSettings",
    "DataSettings",
    "DistillSettings",
    "ModelSettings",
    "OptimSettings",
    "OutputSettings",
    "RunSettings",
    "ScheduleSettings",
    "TrainSettings",
    "load_settings",
    "settings_to_yaml",
]
