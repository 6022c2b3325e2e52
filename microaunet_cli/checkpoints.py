"""Self-describing checkpoints: weights, training state and the resolved settings in one file.

This module sits below every pipeline stage: training writes checkpoints, and evaluation, inference,
export and benchmark read them through :func:`load_trained`, without importing ``training/``.

Loading never executes code from the file (``torch.load(weights_only=True)``): everything saved is
tensors, numbers, strings, lists and dicts.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from microaunet_cli.config import RunSettings
from microaunet_cli.errors import CheckpointError
from microaunet_cli.fileio import atomic_path
from microaunet_cli.models import create_model, model_entry
from microaunet_cli.weights import (
    closest_name,
    looks_like_name,
    resolve_checkpoint,
    shipped_names,
    shipped_path,
)

log = logging.getLogger(__name__)

FORMAT = "microaunet-checkpoint"
FORMAT_VERSION = 1


@dataclass
class TrainedModel:
    """A trained network (in eval mode) and everything needed to feed it and describe it."""

    network: nn.Module
    settings: RunSettings
    path: Path
    size: int  # square input side the network trained at
    mean: list[float]  # per-channel normalisation of RGB in [0, 1], as training applied it
    std: list[float]
    data_identity: dict[str, Any] | None  # None in checkpoints saved before it was recorded
    epoch: int | None
    dataset: str | None
    metrics: dict[str, Any]
    role: str  # the network's role in the registry: teacher or student
    training: str | None  # how it was trained: supervised or distilled (None if unrecorded)

    @property
    def name(self) -> str:
        return self.settings.model.name


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write atomically: an interrupted save leaves the previous file intact."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint file, or shipped weights by name (``microaunet models`` lists them)."""
    path = resolve_checkpoint(path)
    if path.suffix.lower() == ".onnx":
        raise CheckpointError(
            f"{path} is an exported ONNX file, not a training checkpoint; pass the .pt file it was "
            f"exported from (or a shipped name); `predict` and `microaunet_cli.load` take the .onnx itself"
        )
    if path.is_dir():
        inside = path / "checkpoints" / "best.pt"
        example = inside if inside.is_file() else "RUN/checkpoints/best.pt"
        hidden = (
            f"; this folder hides the shipped weights of the same name, at {shipped_path(str(path))}"
            if str(path) in shipped_names()
            else ""
        )
        raise CheckpointError(
            f"{path} is a folder, not a checkpoint file; pass the .pt file, e.g. {example}{hidden}"
        )
    if not path.is_file():
        names = ", ".join(shipped_names()) or "none installed"
        meant = closest_name(path)
        if meant is not None:
            raise CheckpointError(
                f"{path}: no such file; did you mean the shipped weights {meant!r}? "
                f"The shipped names are: {names}"
            )
        if looks_like_name(path):
            raise CheckpointError(
                f"{path}: no such file, and no shipped weights of that name; the shipped names "
                f"are: {names} (see `microaunet models`), or pass the path of a .pt file"
            )
        raise CheckpointError(
            f"checkpoint {path} does not exist; train one with `microaunet train-teacher` "
            f"or `microaunet distill`, pass the path of an existing .pt file, or a shipped name "
            f"({names})"
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({_unreadable(exc)}); it is corrupt, truncated or not a "
            f"microaunet checkpoint: use a last.pt/best.pt written by train-teacher or distill"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a microaunet checkpoint (no '{FORMAT}' marker); "
            f"use a last.pt/best.pt written by train-teacher or distill"
        )
    return ckpt


def _unreadable(exc: Exception) -> str:
    """Why torch.load failed, in one line. Its refusals of unexpected pickled objects advise loading
    with weights_only=False, which would run code from the file: not advice to pass on."""
    if isinstance(exc, pickle.UnpicklingError):
        return "not a PyTorch file of tensors and plain values"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def settings_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "<checkpoint>") -> RunSettings:
    try:
        return RunSettings.model_validate(ckpt["settings"])
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"checkpoint {path} holds settings this version cannot read: {exc}") from None


def build_model(settings: RunSettings) -> nn.Module:
    return create_model(settings.model.name, **settings.model.kwargs())


def input_spec(ckpt: dict[str, Any], path: str | Path) -> tuple[int, list[float], list[float]]:
    """(size, mean, std) the network was trained with: the one normalisation policy.

    Every checkpoint this toolkit has written records them. A file without them is refused rather
    than fed with guessed statistics (ImageNet's, or some prepared folder's): a wrong mean/std moves
    every probability without any error, so the masks would be silently wrong.
    """
    norm, size = ckpt.get("normalization") or {}, ckpt.get("size")
    try:
        mean, std = [float(v) for v in norm["mean"]], [float(v) for v in norm["std"]]
        ok = int(size) > 0 and len(mean) == 3 and len(std) == 3
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise CheckpointError(
            f"checkpoint {path} does not record its input size and normalisation "
            f"(size, normalization.mean/std); it was not written by train-teacher or distill "
            f"of this toolkit: train it again, or add them to the file"
        )
    return int(size), mean, std


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """The one loader for a trained network: the record every stage uses to run or describe it."""
    path = resolve_checkpoint(path)
    ckpt = load_checkpoint(path)
    settings = settings_from_checkpoint(ckpt, path)
    size, mean, std = input_spec(ckpt, path)
    model = build_model(settings)
    try:
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not fit network {settings.model.name!r}: {exc}"
        ) from None
    model.to(device).eval()
    role, training = roles(ckpt, settings)
    return TrainedModel(
        network=model,
        settings=settings,
        path=path,
        size=size,
        mean=mean,
        std=std,
        data_identity=ckpt.get("data_identity"),
        epoch=ckpt.get("epoch"),
        dataset=ckpt.get("dataset"),
        metrics=ckpt.get("metrics") or {},
        role=role,
        training=training,
    )


# Older checkpoints held one "kind": the objective, named after the usual network.
_OLD_KIND_TRAINING = {"teacher": "supervised", "student": "distilled"}


def roles(ckpt: dict[str, Any], settings: RunSettings) -> tuple[str, str | None]:
    """(registry role of the network, how it was trained), for old checkpoints too."""
    training = ckpt.get("training") or _OLD_KIND_TRAINING.get(ckpt.get("kind"))
    return model_entry(settings.model.name).role, training
