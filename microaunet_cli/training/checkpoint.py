"""Self-describing checkpoints: weights, training state and the resolved settings in one file.

Loading never executes code from the file (``torch.load(weights_only=True)``): everything saved is
tensors, numbers, strings, lists and dicts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from microaunet_cli.config import RunSettings
from microaunet_cli.errors import CheckpointError
from microaunet_cli.fileio import atomic_path
from microaunet_cli.models import create_model, model_entry

log = logging.getLogger(__name__)

FORMAT = "microaunet-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write atomically: an interrupted save leaves the previous file intact."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `microaunet train-teacher` "
                              f"or `microaunet distill`, or pass the path of an existing .pt file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                              f"it is corrupt, truncated or not a microaunet checkpoint") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a microaunet checkpoint (no '{FORMAT}' marker); "
                              f"use a last.pt/best.pt written by train-teacher or distill")
    return ckpt


def settings_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "<checkpoint>") -> RunSettings:
    try:
        return RunSettings.model_validate(ckpt["settings"])
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"checkpoint {path} holds settings this version cannot read: {exc}") from None


def build_model(settings: RunSettings) -> nn.Module:
    return create_model(settings.model.name, **settings.model.kwargs())


def model_from_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, RunSettings, dict[str, Any]]:
    """The network of a checkpoint in eval mode, its settings, and the checkpoint's metadata.

    Metadata keys: ``normalization`` ({"mean", "std"}), ``size``, ``epoch``, ``dataset``, ``metrics``,
    ``role`` (the network's role in the registry: teacher or student), ``training`` (supervised or
    distilled) and ``data_identity`` (None in checkpoints saved before it was recorded).
    """
    ckpt = load_checkpoint(path)
    settings = settings_from_checkpoint(ckpt, path)
    model = build_model(settings)
    try:
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit network {settings.model.name!r}: {exc}") from None
    model.to(device).eval()
    meta = {k: ckpt.get(k) for k in ("normalization", "size", "epoch", "dataset", "metrics", "data_identity")}
    meta["role"], meta["training"] = roles(ckpt, settings)
    return model, settings, meta


# Older checkpoints held one "kind": the objective, named after the usual network.
_OLD_KIND_TRAINING = {"teacher": "supervised", "student": "distilled"}


def roles(ckpt: dict[str, Any], settings: RunSettings) -> tuple[str, str | None]:
    """(registry role of the network, how it was trained), for old checkpoints too."""
    training = ckpt.get("training") or _OLD_KIND_TRAINING.get(ckpt.get("kind"))
    return model_entry(settings.model.name).role, training
