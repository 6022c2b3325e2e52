"""What a ``train-teacher`` or ``distill`` run returns: its ``summary.json`` as a typed record."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainingSummary:
    """One training run, as ``runs/<name>/summary.json`` records it."""

    status: str  # "completed", or "preempted" when a stop signal ended it early
    # A stopped run's checkpoints are not final: whatever is built from them must say so.
    interrupted: bool
    stopped_by: str | None  # the signal's name (SIGTERM, ...) when interrupted
    model: str
    role: str  # the network's role in the registry: teacher or student
    training: str  # supervised (train-teacher) or distilled (distill)
    params: int
    dataset: str
    size: int  # the square input side trained at
    epochs_done: int
    epochs: int
    best_epoch: int
    best_val_mdice: float | None  # None before a validation ran
    wall_seconds: float
    train_seconds: float
    train_images_per_s_median: float | None
    device: str
    world_size: int
    rank: int
    checkpoint_best: Path
    checkpoint_last: Path
    data_identity: dict[str, Any] | None = None
    # distill only: the curriculum as run, and the teacher used (path, network, checksums, data check).
    curriculum: dict[str, Any] | None = None
    teacher: dict[str, Any] | None = None
    # Completed runs: the best checkpoint's scores per test split, and how they were computed.
    test: dict[str, dict[str, Any]] = field(default_factory=dict)
    scoring: dict[str, str] | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TrainingSummary:
        """From the dict written as ``summary.json`` (a key with no field here is a TypeError)."""
        paths = ("checkpoint_best", "checkpoint_last")
        return cls(**{**record, **{key: Path(record[key]) for key in paths}})
