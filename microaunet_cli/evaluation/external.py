"""Labelled folders never trained on (CVC-ColonDB, ETIS-LaribPolypDB, CVC-300, ...), read for scoring.

Two layouts, as these sets are passed around:
- ``images/`` and ``masks/`` paired by file stem (PraNet's test sets);
- one folder of ``N.ext`` images and ``pN.ext`` masks (CVC-ColonDB and ETIS as first distributed).
PNG, JPEG, TIFF and BMP. Files are read and resized by prepare-data's own readers, so an external
folder scores exactly as the same images prepared as a test split.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microaunet_cli.data.decode import decode_samples, worker_count
from microaunet_cli.data.layouts import Sample, pair_folder, pair_prefixed
from microaunet_cli.data.original_masks import OriginalMasks, pack
from microaunet_cli.data.store import bad_files_error
from microaunet_cli.errors import DataError
from microaunet_cli.evaluation.scoring import SplitData

log = logging.getLogger(__name__)


@dataclass
class ExternalSet:
    split: SplitData
    layout: str
    skipped: list[dict[str, str]] = field(default_factory=list)


def find_pairs(folder: Path) -> tuple[str, list[Sample], list[tuple[str, str]]]:
    """(layout name, pairs, problems) of an external folder."""
    if folder.is_file():
        raise DataError(
            f"--external {folder} is a file, not a folder; unpack it and give the folder holding "
            f"images/ and masks/ (or N.ext images with pN.ext masks)"
        )
    if not folder.is_dir():
        raise DataError(
            f"--external {folder}: folder not found; give the folder holding images/ and masks/ "
            f"(or N.ext images with pN.ext masks)"
        )
    dirs = {d.name.lower(): d for d in folder.iterdir() if d.is_dir()}
    if "images" in dirs and "masks" in dirs:
        return "images+masks", *pair_folder(dirs["images"], dirs["masks"])
    samples, problems = pair_prefixed(folder)
    if samples:
        return "N+pN", samples, problems
    if "images" in dirs or "masks" in dirs:
        has, lacks = ("images", "masks") if "images" in dirs else ("masks", "images")
        raise DataError(
            f"--external {folder}: has {has}/ but no {lacks}/; scoring needs both, the mask of each "
            f"image under the same file name in {folder / lacks}/"
        )
    raise DataError(
        f"--external {folder}: no labelled images found. Expected images/ and masks/ with the same "
        f"file names, or one folder of N.ext images with pN.ext masks (png, jpg, tif, bmp)."
    )


def read_external(folder: Path, size: int, skip_bad: bool = False, workers: int | None = None) -> ExternalSet:
    """Every pair of ``folder`` resized to ``size`` (the network's input), with its original mask."""
    layout, samples, problems = find_pairs(folder)
    log.info("external set %s: %s layout, %d image/mask pairs", folder, layout, len(samples))
    images, masks, names, pngs, shapes = [], [], [], [], []
    decoded = decode_samples(samples, size, worker_count(workers, len(samples)))
    try:
        for sample, result in zip(samples, decoded, strict=True):
            if result.error is not None:
                problems.append((str(sample.image), result.error))
                continue
            images.append(result.image)
            masks.append(result.mask)
            names.append(sample.name)
            pngs.append(result.original)
            shapes.append(result.original_shape)
    finally:
        decoded.close()
    if problems and not skip_bad:
        raise bad_files_error(problems, listed_in="the evaluation's summary.json")
    if not images:
        raise DataError(f"--external {folder}: none of its images could be used; see the messages above")
    for file, reason in problems:
        log.warning("skipped: %s", reason if reason.startswith(file) else f"{file}: {reason}")
    split = SplitData(np.stack(images), np.stack(masks), names, OriginalMasks(*pack(pngs, shapes)))
    return ExternalSet(split, layout, [{"file": f, "reason": r} for f, r in problems])
