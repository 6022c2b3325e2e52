"""Find the image/mask pairs of a data set folder, whichever of the distributed layouts it has.

Layouts (``Layout.name``):
- ``kvasir-download``: ``images/``, ``masks/`` (Kvasir-SEG as downloaded, and the synthetic set);
- ``kvasir-presplit``: ``train|val[|test]/images|masks``;
- ``cvc-png``: ``PNG/Original``, ``PNG/Ground Truth`` (or --src at the PNG folder), ``metadata.csv``;
- ``cvc-tif``: ``Original/``, ``Ground Truth/`` holding TIFF frames (or under ``TIF/`` / ``TIFF/``).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from microaunet_cli.data.io import IMAGE_SUFFIXES, TIFF_SUFFIXES
from microaunet_cli.datasets import DATASET_SPECS, dataset_of_layout
from microaunet_cli.errors import DataError

log = logging.getLogger(__name__)

# Files that operating systems drop into folders; never data.
_SYSTEM_FILES = {"thumbs.db", "desktop.ini", "ehthumbs.db"}
_PRESPLIT_PARTS = ("train", "val", "test")
_CVC_IMAGE_DIRS = ("Original",)
_CVC_MASK_DIRS = ("Ground Truth", "GroundTruth", "Ground_Truth")


@dataclass(frozen=True)
class Sample:
    """One image and its mask. ``group`` is the video sequence where known; ``part`` the pre-split folder."""

    name: str
    image: Path
    mask: Path
    group: str | None = None
    part: str | None = None


@dataclass
class Layout:
    name: str
    family: str  # which data set the folder holds (a name in microaunet_cli/datasets.py)
    root: Path
    samples: list[Sample]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) pairing problems

    @property
    def has_groups(self) -> bool:
        return any(s.group is not None for s in self.samples)


def detect_layout(src: Path) -> Layout:
    """The layout found at ``src`` (or in its only sub-folder that has one)."""
    if not src.exists():
        raise DataError(
            f"{src}: folder not found; give --src the folder you downloaded "
            f"(for Kvasir-SEG the one holding images/ and masks/)."
        )
    if not src.is_dir():
        raise DataError(f"{src}: is a file, not a folder; give --src the extracted data set folder.")
    layout = _layout_at(src)
    if layout is None:
        below = [d for d in _subdirs(src) if _layout_at(d) is not None]
        if len(below) == 1:
            layout = _layout_at(below[0])
    if layout is None:
        expected = [spec.looks_like for spec in DATASET_SPECS if spec.looks_like]
        raise DataError(
            f"{src}: no known data set layout found. Expected {', '.join(expected[:-1])} or {expected[-1]}."
        )
    if not layout.samples:
        raise DataError(f"{layout.root}: the {layout.name} layout holds no images; is the download complete?")
    return layout


def find_layouts(src: Path) -> list[Layout]:
    """Every layout at ``src`` and in its sub-folders (two levels), for data sets that sit side by side."""
    if not src.is_dir():
        raise DataError(f"{src}: folder not found; give --src the folder holding the data sets.")
    found = []
    for folder in [src, *_subdirs(src), *(d for sub in _subdirs(src) for d in _subdirs(sub))]:
        layout = _layout_at(folder)
        if layout is not None and layout.samples and all(layout.root != f.root for f in found):
            found.append(layout)
    return found


def _layout_at(src: Path) -> Layout | None:
    """The first layout of the data set table (datasets.py) that ``src`` has."""
    dirs = {d.name.lower(): d for d in _subdirs(src)}
    for detect in dict.fromkeys(_DETECTORS[name] for spec in DATASET_SPECS for name in spec.layouts):
        layout = detect(src, dirs)
        if layout is not None:
            return layout
    return None


def _download(src: Path, dirs: dict[str, Path]) -> Layout | None:
    if "images" not in dirs or "masks" not in dirs:
        return None
    samples, problems = pair_folder(dirs["images"], dirs["masks"])
    return _layout("kvasir-download", src, samples, problems)


def _presplit(src: Path, dirs: dict[str, Path]) -> Layout | None:
    parts = [p for p in _PRESPLIT_PARTS if p in dirs and _has_pair_dirs(dirs[p])]
    if "train" not in parts:
        return None
    samples: list[Sample] = []
    problems: list[tuple[str, str]] = []
    for part in parts:
        sub = {d.name.lower(): d for d in _subdirs(dirs[part])}
        found, bad = pair_folder(sub["images"], sub["masks"], part=part)
        samples += found
        problems += bad
    return _layout("kvasir-presplit", src, samples, problems)


def _cvc_at(src: Path, dirs: dict[str, Path]) -> Layout | None:
    for sub in ("png", "tif", "tiff"):
        if sub in dirs and _cvc_dirs(dirs[sub]) is not None:
            return _cvc(dirs[sub], metadata_root=src)
    if _cvc_dirs(src) is not None:
        return _cvc(src, metadata_root=src.parent)
    return None


def _cvc(folder: Path, metadata_root: Path) -> Layout:
    image_dir, mask_dir = _cvc_dirs(folder)  # type: ignore[misc]
    samples, problems = pair_folder(image_dir, mask_dir)
    is_tif = samples and all(s.image.suffix.lower() in TIFF_SUFFIXES for s in samples)
    sequences = _read_sequences(folder, metadata_root)
    if sequences:
        samples = [Sample(s.name, s.image, s.mask, group=sequences.get(s.name)) for s in samples]
    return _layout("cvc-tif" if is_tif else "cvc-png", folder, samples, problems)


def _layout(name: str, root: Path, samples: list[Sample], problems: list[tuple[str, str]]) -> Layout:
    return Layout(name, dataset_of_layout(name), root, samples, problems)


# Layout name -> the function that recognises it (None: not this layout). Every layout named in the
# data set table needs one; one function may recognise several (cvc-png and cvc-tif).
_DETECTORS: dict[str, Callable[[Path, dict[str, Path]], Layout | None]] = {
    "kvasir-download": _download,
    "kvasir-presplit": _presplit,
    "cvc-png": _cvc_at,
    "cvc-tif": _cvc_at,
}


def _cvc_dirs(folder: Path) -> tuple[Path, Path] | None:
    dirs = {d.name.lower(): d for d in _subdirs(folder)}
    image = next((dirs[n.lower()] for n in _CVC_IMAGE_DIRS if n.lower() in dirs), None)
    mask = next((dirs[n.lower()] for n in _CVC_MASK_DIRS if n.lower() in dirs), None)
    return (image, mask) if image is not None and mask is not None else None


def _read_sequences(folder: Path, metadata_root: Path) -> dict[str, str]:
    """frame number -> video sequence, from CVC-ClinicDB's metadata.csv where present."""
    for candidate in (folder / "metadata.csv", metadata_root / "metadata.csv"):
        if candidate.is_file():
            with open(candidate, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            if rows and {"frame_id", "sequence_id"} <= set(rows[0]):
                log.info("video sequences read from %s", candidate)
                return {r["frame_id"].strip(): r["sequence_id"].strip() for r in rows}
            raise DataError(
                f"{candidate}: needs the columns frame_id and sequence_id; "
                f"restore the file from the CVC-ClinicDB download or remove it."
            )
    return {}


def pair_folder(
    image_dir: Path, mask_dir: Path, part: str | None = None
) -> tuple[list[Sample], list[tuple[str, str]]]:
    """Pair images with masks by file stem; unpaired or ambiguous files are returned as problems."""
    images, problems = _by_stem(image_dir)
    masks, mask_problems = _by_stem(mask_dir)
    problems += mask_problems
    for stem in sorted(images.keys() - masks.keys()):
        problems.append((str(images[stem]), f"has no mask in {mask_dir} (expected {stem}.<ext>)"))
    for stem in sorted(masks.keys() - images.keys()):
        problems.append((str(masks[stem]), f"is a mask without an image in {image_dir}"))
    stems = sorted(images.keys() & masks.keys(), key=_natural_key)
    return [Sample(stem, images[stem], masks[stem], part=part) for stem in stems], problems


def pair_prefixed(folder: Path, prefix: str = "p") -> tuple[list[Sample], list[tuple[str, str]]]:
    """Pair ``N.ext`` images with ``pN.ext`` masks in one folder (CVC-ColonDB and ETIS-LaribPolypDB as first
    distributed); unpaired files are returned as problems."""
    files, problems = _by_stem(folder)
    mask_of = {
        stem[len(prefix) :]: path
        for stem, path in files.items()
        if stem.startswith(prefix) and stem[len(prefix) :] in files
    }
    images = {stem: path for stem, path in files.items() if stem not in {prefix + s for s in mask_of}}
    for stem, path in sorted(images.items()):
        if stem in mask_of:
            continue
        if stem.startswith(prefix) and stem[len(prefix) :].isdigit():
            reason = f"is a mask without an image in {folder} (expected {stem[len(prefix) :]}.<ext>)"
            problems.append((str(path), reason))
        else:
            problems.append((str(path), f"has no mask in {folder} (expected {prefix}{stem}.<ext>)"))
    stems = sorted(images.keys() & mask_of.keys(), key=_natural_key)
    return [Sample(stem, images[stem], mask_of[stem]) for stem in stems], problems


def _by_stem(folder: Path) -> tuple[dict[str, Path], list[tuple[str, str]]]:
    found: dict[str, Path] = {}
    problems: list[tuple[str, str]] = []
    ignored = []
    for path in sorted(folder.iterdir()):
        if _is_system_file(path) or path.is_dir():
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            ignored.append(path.name)
            continue
        if path.stem in found:
            problems.append((str(path), f"has the same name as {found[path.stem].name}; keep one of them"))
            continue
        found[path.stem] = path
    if ignored:
        log.warning(
            "%s: ignored %d file(s) that are not images: %s",
            folder,
            len(ignored),
            ", ".join(ignored[:5]) + (" ..." if len(ignored) > 5 else ""),
        )
    return found, problems


def _is_system_file(path: Path) -> bool:
    return path.name.startswith(".") or path.name.lower() in _SYSTEM_FILES


def _has_pair_dirs(folder: Path) -> bool:
    names = {d.name.lower() for d in _subdirs(folder)}
    return "images" in names and "masks" in names


def _subdirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not _is_system_file(d))


def _natural_key(stem: str) -> tuple:
    """CVC frames are numbered: sort 2 before 10."""
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)
