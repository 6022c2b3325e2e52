"""Before scoring a checkpoint on a prepared folder: could its test images be ones it trained on?

The checkpoint records the identity of its training data (``data/identity.py``). A folder holding the
same images split another way (another policy or split seed) may put training images in its test
split: such scores are meaningless, so evaluation refuses, unless each split to score holds exactly
the images of the checkpoint's split of that name (PraNet's fixed test lists, whatever seed divided
the rest into train and val). The same split at another size is scored after resizing the images to
the network's size, with a warning.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from microaunet_cli.data.identity import describe, differences
from microaunet_cli.data.prepared import open_prepared
from microaunet_cli.datasets import DATASET_SPECS
from microaunet_cli.errors import DataError

log = logging.getLogger(__name__)

# Which source collections each data set draws its images from.
_SOURCES = {spec.name: set(spec.sources) for spec in DATASET_SPECS}


def _same_members(here: dict[str, Any], trained: dict[str, Any], splits: list[str]) -> bool:
    """Whether every split to score holds the very images of the checkpoint's split of that name: none
    of them can then be one of its training images, however the rest was divided."""
    ours, theirs = here.get("split_membership"), trained.get("split_membership")
    if not ours or not theirs or not splits or here["dataset"] != trained["dataset"]:
        return False  # checkpoints saved before per-split membership was recorded: no such proof
    return all(name in ours and ours[name] == theirs.get(name) for name in splits)


def check_evaluation_data(
    trained: dict[str, Any] | None,
    prepared: Any,
    fold: int | None,
    data_dir: Path,
    explicit: bool,
    splits: list[str] | None = None,
) -> str:
    """Refuse a folder whose ``splits`` (the stored splits to score) may overlap the checkpoint's
    training images; returns a short note of what was checked, for the summary. ``trained`` is the
    checkpoint's data identity."""
    if trained is None:
        if explicit:
            log.warning(
                "the checkpoint records no data identity (saved before provenance was recorded): cannot "
                "check that %s holds no image it trained on",
                data_dir,
            )
        return "unchecked (the checkpoint records no data identity)"
    here = prepared.identity(fold)
    if not _SOURCES.get(here["dataset"], set()) & _SOURCES.get(trained["dataset"], set()):
        return f"other images than the training data ({here['dataset']} against {trained['dataset']})"
    if here["membership"] != trained["membership"]:
        split_fields = [f for f in differences(here, trained, ("policy", "split_seed"))]
        if split_fields and _same_members(here, trained, splits or []):
            scored = ", ".join(splits or [])
            log.info(
                "%s divides its images otherwise than the checkpoint's training data (%s), but its %s "
                "holds the checkpoint's own %s images: none of them was trained on",
                data_dir,
                ", ".join(split_fields),
                scored,
                scored,
            )
            return f"same {scored} images, the rest divided otherwise ({', '.join(split_fields)})"
        if split_fields:
            details = "; ".join(
                describe(f, here, trained, "the checkpoint's training data") for f in split_fields
            )
            raise DataError(
                f"{data_dir} splits the images differently from the data the checkpoint trained on "
                f"({details}): "
                f"its test images may be training images of the checkpoint. Evaluate on a folder prepared "
                f"with the same --split and --seed, or score a set it never saw with --external FOLDER"
            )
        log.warning(
            "%s holds other images per split than the checkpoint's training data although the policy and "
            "seed agree (files added, left out or renamed?): check that no test image was trained on",
            data_dir,
        )
        return "split membership differs (same policy and seed)"
    if here["size"] != trained["size"]:
        log.warning(
            "%s was prepared at %d px, the checkpoint trained at %d px: its images are resized to %d px "
            "before prediction (scores differ slightly from a folder prepared at %d px)",
            data_dir,
            here["size"],
            trained["size"],
            trained["size"],
            trained["size"],
        )
        return f"same split, other size ({here['size']} px resized to {trained['size']} px)"
    if here["digest"] != trained["digest"]:
        log.warning(
            "%s holds the same split as the checkpoint's training data but other array content "
            "(re-prepared from other files?)",
            data_dir,
        )
        return "same split, other content"
    return "same data as training"


def _image_key(image: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()


def _training_data(trained: dict[str, Any] | None, folder: Path, size: int) -> tuple[Any, str]:
    """The checkpoint's prepared training data when it is at hand and still what it trained on, at the
    network's size; else None and why not."""
    if trained is None:
        return None, "the checkpoint records no data identity"
    if not (folder / "manifest.json").is_file():
        return None, f"its prepared data {folder} is not here"
    try:
        prepared = open_prepared(folder)
    except DataError as exc:
        return None, f"its prepared data {folder} cannot be read: {exc}"
    if prepared.identity(trained["fold"])["digest"] != trained["digest"]:
        return None, f"{folder} no longer holds the data the checkpoint trained on"
    if prepared.size != size:
        return None, f"{folder} is at {prepared.size} px, the network at {size} px"
    return prepared, ""


def check_external(
    trained: dict[str, Any] | None,
    training_dir: Path,
    folder: Path,
    images: np.ndarray,
    names: list[str],
) -> str:
    """Refuse an external folder holding copies of images the checkpoint trained or was selected on.

    External images are resampled to the network's size exactly as prepare-data resampled the
    training images, so a copy of a training or validation image (the same file, whatever its name)
    gives the very same array. Re-encoded or cropped copies are not caught. Returns a note for the
    summary; when the training data cannot be found or is not the checkpoint's, says it was not checked.
    """
    prepared, why = _training_data(trained, training_dir, images.shape[1])
    if prepared is None:
        note = (
            f"external folder: not checked against the training data ({why}); "
            f"make sure its images were never trained on"
        )
        log.warning("%s", note)
        return note
    seen: dict[bytes, str] = {}
    for split in prepared.splits:
        if split in prepared.test_splits:
            continue
        arrays = prepared.load(split, trained["fold"])
        for image, name in zip(arrays.images, arrays.names):
            seen[_image_key(image)] = f"{split}/{name}"
    copies = [f"{name} = {seen[key]}" for name, key in zip(names, map(_image_key, images)) if key in seen]
    if copies:
        shown = "; ".join(copies[:5]) + ("; ..." if len(copies) > 5 else "")
        raise DataError(
            f"--external {folder}: {len(copies)} of its {len(names)} images are copies of images the "
            f"checkpoint trained or was selected on ({shown}; from {training_dir}): their scores would "
            f"flatter it. Remove them from the folder, or score the data set's test split without "
            f"--external"
        )
    return (
        f"external folder: none of its {len(names)} images is one of the checkpoint's {len(seen)} "
        f"training and validation images"
    )
