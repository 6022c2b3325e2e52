"""Shared test fixtures that are plain functions: tiny checkpoints built without training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microaunet_cli.checkpoints import save_checkpoint
from microaunet_cli.config import RunSettings
from microaunet_cli.models import create_model

NORMALIZATION = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}


def make_checkpoint(
    path: str | Path,
    model: str = "malunet",
    size: int = 64,
    dataset: str = "synthetic",
    prepared_dir: str | Path | None = None,
    kind: str = "teacher",
) -> Path:
    """Write a checkpoint of an untrained network, as train-teacher / distill would lay it out."""
    settings: dict[str, Any] = {"model": {"name": model}, "data": {"dataset": dataset}}
    if prepared_dir is not None:
        settings["data"]["prepared_dir"] = str(prepared_dir)
    save_checkpoint(
        path,
        {
            "kind": kind,
            "model": create_model(model).state_dict(),
            "settings": RunSettings.model_validate(settings).model_dump(mode="json"),
            "epoch": 0,
            "size": size,
            "dataset": dataset,
            "normalization": NORMALIZATION,
            "metrics": {},
        },
    )
    return Path(path)


def recipe_settings(prepared, runs, *sets: str):
    """Settings of a short deterministic run on a prepared folder (recipe options tested on top)."""
    from microaunet_cli.config import RunSettings, load_settings

    base = [
        f"data.prepared_dir={prepared}",
        f"output.runs_dir={runs}",
        "train.batch_size=8",
        "train.eval_batch_size=16",
        "output.quiet=true",
        "train.deterministic=true",
        "schedule.t_max=4",
    ]
    return load_settings(RunSettings, sets=[*base, *sets], environ={})
