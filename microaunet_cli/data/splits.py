"""Split policies: which images train, which validate, which test.

The test side is fixed first; validation is carved from the training side only, so nothing about
the test images ever chooses a model or a threshold. ``sequence`` (and ``kfold`` where sequences are
known) moves whole video sequences, so no sequence is seen on both sides.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources

import numpy as np

from microaunet_cli.data.layouts import Layout, Sample
from microaunet_cli.data.settings import PrepareSettings
from microaunet_cli.datasets import dataset_spec
from microaunet_cli.errors import DataError

log = logging.getLogger(__name__)

# Separate random streams per step, so changing val_fraction does not move the test images.
_STEP_TEST, _STEP_VAL, _STEP_FOLDS = 1, 2, 3


@dataclass
class SidePlan:
    """The sides of one source. ``folds`` (kfold only) gives the fold of each training sample."""

    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    folds: list[int] | None = None
    missing: list[tuple[str, str]] | None = None  # names a split list wants but the folder lacks


def plan_sides(layout: Layout, policy: str, settings: PrepareSettings) -> SidePlan:
    """Apply ``policy`` to the samples of one data set folder."""
    if policy == "pranet":
        return _pranet(layout, settings)
    if policy == "predefined":
        return _predefined(layout, settings)
    grouped = policy == "sequence" or (policy == "kfold" and layout.has_groups)
    if policy == "sequence" and not layout.has_groups:
        raise DataError(
            f"{layout.root}: the sequence split needs video sequences, which only "
            f"CVC-ClinicDB's metadata.csv gives; use --split random or pranet for this folder."
        )
    train, test = carve(layout.samples, settings.test_fraction, _rng(settings, _STEP_TEST), grouped)
    if policy == "kfold":
        return _kfold(train, test, settings, grouped)
    train, val = carve(train, settings.val_fraction, _rng(settings, _STEP_VAL), grouped)
    return SidePlan(train, val, test)


def carve(
    samples: list[Sample], fraction: float, rng: np.random.Generator, grouped: bool
) -> tuple[list[Sample], list[Sample]]:
    """Hold out about ``fraction`` of ``samples`` (whole groups when ``grouped``); keep the order."""
    target = round(fraction * len(samples))
    if target == 0:
        return list(samples), []
    groups = _groups(samples, grouped)
    held: set[str] = set()
    count = 0
    for key in _shuffled(groups, rng):
        if count >= target:
            break
        held.add(key)
        count += len(groups[key])
    keep = [s for s in samples if _group_key(s, grouped) not in held]
    out = [s for s in samples if _group_key(s, grouped) in held]
    if not keep:
        raise DataError(
            f"holding out {fraction:.0%} leaves no images to train on "
            f"({len(groups)} group(s) in all); lower --val-fraction / --test-fraction."
        )
    return keep, out


def _kfold(train: list[Sample], test: list[Sample], settings: PrepareSettings, grouped: bool) -> SidePlan:
    groups = _groups(train, grouped)
    k = settings.folds
    if len(groups) < k:
        raise DataError(
            f"{k} folds need at least {k} training {'sequences' if grouped else 'images'}, "
            f"found {len(groups)}; lower --set folds=N."
        )
    sizes = [0] * k
    fold_of: dict[str, int] = {}
    for key in _shuffled(groups, _rng(settings, _STEP_FOLDS)):
        fold = int(np.argmin(sizes))  # fill the smallest fold: balanced even with uneven sequences
        fold_of[key] = fold
        sizes[fold] += len(groups[key])
    folds = [fold_of[_group_key(s, grouped)] for s in train]
    order = sorted(range(len(train)), key=lambda i: folds[i])  # stable: each fold is one block on disk
    return SidePlan([train[i] for i in order], [], test, folds=[folds[i] for i in order])


def _pranet(layout: Layout, settings: PrepareSettings) -> SidePlan:
    prefix = dataset_spec(layout.family).pranet_list
    if prefix is None:
        raise DataError(
            f"{layout.root}: {dataset_spec(layout.family).title} has no published pranet split; "
            f"use --split random."
        )
    by_name = {s.name: s for s in layout.samples}
    missing: list[tuple[str, str]] = []
    sides = {}
    for side in ("train", "test"):
        names = read_split_list(f"{prefix}_{side}.txt")
        sides[side] = [by_name[n] for n in names if n in by_name]
        missing += [
            (n, f"listed in the pranet {side} list but not found in {layout.root}")
            for n in names
            if n not in by_name
        ]
    listed = len(sides["train"]) + len(sides["test"]) + len(missing)
    extra = len(layout.samples) - (len(sides["train"]) + len(sides["test"]))
    if extra:
        log.warning("%s: %d image(s) are in neither pranet list and are left out", layout.root, extra)
    log.info("pranet lists: %d listed, %d found", listed, listed - len(missing))
    if missing and not settings.skip_bad:
        examples = ", ".join(name for name, _ in missing[:3])
        raise DataError(
            f"{layout.root}: {len(missing)} of the {listed} images named by the pranet split lists "
            f"are missing (e.g. {examples}). Is the download complete? For a partial folder use "
            f"--split random, or pass --skip-bad to prepare the listed images that are there."
        )
    train, val = carve(sides["train"], settings.val_fraction, _rng(settings, _STEP_VAL), grouped=False)
    return SidePlan(train, val, sides["test"], missing=missing)


def _predefined(layout: Layout, settings: PrepareSettings) -> SidePlan:
    if layout.name != "kvasir-presplit":
        raise DataError(
            f"{layout.root}: the predefined split needs the pre-split layout "
            f"(train/images, train/masks, val/...), but the folder has the {layout.name} layout; "
            f"use --split pranet or random."
        )
    parts: dict[str, list[Sample]] = defaultdict(list)
    for s in layout.samples:
        parts[s.part or "train"].append(s)
    if "test" in parts:
        return SidePlan(parts["train"], parts.get("val", []), parts["test"])
    # The original MALUNet project evaluates on val/: it is the test side; validation is carved from train.
    log.info("pre-split layout without test/: val/ is used as the test side, validation carved from train/")
    train, val = carve(parts["train"], settings.val_fraction, _rng(settings, _STEP_VAL), grouped=False)
    return SidePlan(train, val, parts.get("val", []))


def read_split_list(filename: str) -> list[str]:
    """A split list shipped with the package: one image stem or frame number per line."""
    text = resources.files("microaunet_cli.data").joinpath("splits", "pranet", filename).read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _groups(samples: list[Sample], grouped: bool) -> dict[str, list[Sample]]:
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[_group_key(s, grouped)].append(s)
    return groups


def _group_key(sample: Sample, grouped: bool) -> str:
    # A frame missing from metadata.csv forms its own group rather than joining an arbitrary one.
    return f"seq:{sample.group}" if grouped and sample.group is not None else f"img:{sample.name}"


def _shuffled(groups: dict[str, list[Sample]], rng: np.random.Generator) -> list[str]:
    keys = sorted(groups)  # a fixed order before shuffling: same seed, same split on every machine
    return [keys[i] for i in rng.permutation(len(keys))]


def _rng(settings: PrepareSettings, step: int) -> np.random.Generator:
    return np.random.default_rng([settings.seed, step])
