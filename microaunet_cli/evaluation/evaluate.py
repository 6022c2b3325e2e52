"""Evaluate a checkpoint on a prepared split or an external labelled folder: metrics in both
conventions at original resolution, per-case rows, overlays of the worst cases.

Only the checkpoint is needed: it carries the network, its settings (hence the prepared data
folder), the input size, the normalisation statistics and the identity of the data it trained on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from microaunet_cli import data
from microaunet_cli.checkpoints import TrainedModel, load_trained
from microaunet_cli.devices import pick_device
from microaunet_cli.errors import DataError
from microaunet_cli.evaluation.data_check import check_evaluation_data, check_external
from microaunet_cli.evaluation.external import read_external
from microaunet_cli.evaluation.scoring import CASE_COLUMNS, NO_ORIGINALS_WARNING, SplitData, evaluate_split
from microaunet_cli.fileio import write_csv, write_json_atomic
from microaunet_cli.inference.resize import THRESHOLD
from microaunet_cli.inference.runners import Predictor, trained_runner, with_tta
from microaunet_cli.weights import WEIGHTS_DIR, looks_like_name, resolve_checkpoint

log = logging.getLogger(__name__)

CONVENTIONS = {
    "per_image": "PraNet convention (headline): Dice, IoU and MAE per image, then the mean; "
    "an image with empty prediction and empty ground truth scores 1",
    "pooled": "MALUNet convention: one confusion matrix over every pixel of the split",
    "resolution": "'original': the network runs at its training size, its probabilities are resized "
    f"bilinearly to each ground truth's own size and thresholded at {THRESHOLD} (PraNet protocol); "
    "'resized SxS': against the square prepared masks (biased upward)",
}


@dataclass(frozen=True)
class EvaluationSummary:
    """What ``evaluate`` scored, as its ``summary.json`` records it."""

    checkpoint: Path
    model: str
    role: str  # the network's role in the registry: teacher or student
    training: str | None  # supervised or distilled (None if the checkpoint does not say)
    epoch: int | None
    dataset: str | None  # the data set the checkpoint trained on
    size: int  # the network's input side
    data_check: str  # how the data scored relates to the data trained on
    threshold: float
    device: str
    out_dir: Path
    conventions: dict[str, str]
    # Per split (a prepared split, each test split of polyp-mix, or the external folder's name): the
    # image count, per-image and pooled metrics and the resolution they were computed at.
    splits: dict[str, dict[str, Any]]
    # A prepared split: its folder and the side it was prepared at.
    data_dir: Path | None = None
    data_size: int | None = None
    # An external folder: where it is, the layout found and the files left out (with why).
    external: Path | None = None
    layout: str | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    # Scored with flip test-time augmentation (evaluate --tta).
    tta: bool = False

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EvaluationSummary:
        """From the dict written as ``summary.json``."""
        paths = {k: Path(record[k]) for k in ("checkpoint", "out_dir", "data_dir", "external") if k in record}
        return cls(**{**record, **paths})


def run_folder(ckpt: Path) -> Path:
    """``runs/<name>/checkpoints/best.pt`` -> ``runs/<name>``; a checkpoint elsewhere -> its folder."""
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def default_out_dir(ckpt: Path, split: str, tta: bool = False) -> Path:
    """``<run folder>/eval-<split>[-tta]``; for shipped weights (given by name), ``eval-<name>-<split>``
    in the working directory, never inside the installed package."""
    suffix = "-tta" if tta else ""
    if looks_like_name(ckpt) or resolve_checkpoint(ckpt).parent == WEIGHTS_DIR:
        return Path(f"eval-{ckpt.stem}-{split}{suffix}")
    return run_folder(ckpt) / f"eval-{split}{suffix}"


def find_prepared(settings_dir: Path, ckpt: Path) -> Path:
    """The checkpoint's prepared folder. A relative path was relative to where training ran, which is
    usually the folder holding ``runs/``; evaluation may run elsewhere, so look there too."""
    if settings_dir.is_absolute() or settings_dir.is_dir():
        return settings_dir
    beside_runs = run_folder(ckpt).parent.parent / settings_dir
    if beside_runs.is_dir():
        log.info("prepared data %s found beside the run folder: %s", settings_dir, beside_runs)
        return beside_runs
    return settings_dir


def _open(data_dir: Path, explicit: bool) -> Any:
    try:
        return data.open_prepared(data_dir)
    except DataError as exc:
        if explicit:
            raise
        raise DataError(
            f"{exc}\nThe checkpoint was trained on {data_dir}; if the prepared data is elsewhere, "
            f"pass --data-dir."
        ) from None


def splits_to_evaluate(available: list[str], test_splits: list[str], split: str) -> list[str]:
    """``test`` means every test split (polyp-mix has one per source); any other name itself."""
    if split == "test" and split not in available and test_splits:
        return list(test_splits)
    if split not in available:
        raise DataError(f"the prepared data has no split {split!r}; choose one of: {', '.join(available)}")
    return [split]


def _prepared_splits(prepared: Any, split: str, fold: int | None) -> dict[str, SplitData]:
    out = {}
    for name in splits_to_evaluate(list(prepared.splits), list(prepared.test_splits), split):
        # k-fold data: the checkpoint's fold decides which block is "val".
        arrays = prepared.load(name, fold=fold)
        originals = prepared.original_masks(name, fold)
        if originals is None:
            log.warning(NO_ORIGINALS_WARNING.format(root=prepared.root, split=name, size=prepared.size))
        out[name] = SplitData(arrays.images, arrays.masks, list(arrays.names), originals)
    return out


def evaluate_checkpoint(
    ckpt: str | Path,
    split: str = "test",
    data_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 32,
    worst: int = 8,
    external: str | Path | None = None,
    skip_bad: bool = False,
    tta: bool = False,
) -> EvaluationSummary:
    """Score ``ckpt`` on ``split`` of its prepared data (or ``data_dir``), or on an ``external`` labelled
    folder never prepared; write summary.json, per_case.csv and worst-case overlays.

    Returns the summary (also written as ``<out_dir>/summary.json``).
    """
    ckpt = Path(ckpt)
    dev = pick_device(device)
    trained = load_trained(ckpt, dev)
    runner = with_tta(trained_runner(trained, dev, description=f"{ckpt} on {dev}"), tta)
    if external is not None:
        return _evaluate_external(
            trained, Path(external), runner, dev, out_dir, batch_size, worst, skip_bad, ckpt, tta
        )
    settings = trained.settings
    explicit = data_dir is not None
    data_dir = Path(data_dir) if explicit else find_prepared(settings.data.resolved_dir(), ckpt)
    prepared = _open(data_dir, explicit)
    data_check = check_evaluation_data(
        trained.data_identity,
        prepared,
        settings.data.fold,
        data_dir,
        explicit,
        splits_to_evaluate(list(prepared.splits), list(prepared.test_splits), split),
    )
    out = Path(out_dir) if out_dir is not None else default_out_dir(ckpt, split, tta)
    results, rows = {}, []
    for name, split_data in _prepared_splits(prepared, split, settings.data.fold).items():
        results[name], split_rows = evaluate_split(
            runner, split_data, name, trained.size, batch_size, worst, out / "overlays"
        )
        rows += split_rows
    return _write_summary(
        trained,
        dev,
        out,
        results,
        rows,
        data_dir=str(data_dir),
        data_size=prepared.size,
        data_check=data_check,
        tta=tta,
    )


def _evaluate_external(
    trained: TrainedModel,
    folder: Path,
    runner: Predictor,
    dev: torch.device,
    out_dir: str | Path | None,
    batch_size: int,
    worst: int,
    skip_bad: bool,
    ckpt: Path,
    tta: bool,
) -> EvaluationSummary:
    """A labelled folder never trained on, scored as a test split at original resolution."""
    found = read_external(folder, trained.size, skip_bad)
    data_check = check_external(
        trained.data_identity,
        find_prepared(trained.settings.data.resolved_dir(), trained.path),
        folder,
        found.split.images,
        found.split.names,
    )
    name = folder.name
    out = Path(out_dir) if out_dir is not None else default_out_dir(ckpt, name, tta)
    result, rows = evaluate_split(
        runner, found.split, name, trained.size, batch_size, worst, out / "overlays"
    )
    return _write_summary(
        trained,
        dev,
        out,
        {name: result},
        rows,
        external=str(folder),
        layout=found.layout,
        skipped=found.skipped,
        data_check=data_check,
        tta=tta,
    )


def _write_summary(
    trained: TrainedModel,
    dev: torch.device,
    out: Path,
    results: dict[str, Any],
    rows: list[dict[str, Any]],
    **extra: Any,
) -> EvaluationSummary:
    """Write ``per_case.csv`` and ``summary.json`` into ``out``; return the summary."""
    write_csv(out / "per_case.csv", rows, CASE_COLUMNS)
    record = _record(trained, dev, out, results, **extra)
    write_json_atomic(out / "summary.json", record)
    return EvaluationSummary.from_record(record)


def _record(
    trained: TrainedModel, dev: torch.device, out: Path, results: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "checkpoint": str(trained.path),
        "model": trained.name,
        "role": trained.role,
        "training": trained.training,
        "epoch": trained.epoch,
        "dataset": trained.dataset,
        "size": trained.size,
        **extra,
        "threshold": THRESHOLD,
        "device": str(dev),
        "out_dir": str(out),
        "conventions": CONVENTIONS,
        "splits": results,
    }
