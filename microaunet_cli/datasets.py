"""The data sets the toolkit knows: one entry each, read by settings, layout detection, splits and help.

Adding a data set means adding an entry here (and, for a new folder layout, a detector in
``data/layouts.py``); see docs/ARCHITECTURE.md, "Adding a data set layout". This module imports
nothing from the package, so the settings (``config/``) and the data stage (``data/``) can both read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # the value of --dataset and data.dataset
    title: str  # the name it is published under, for messages
    blurb: str = ""  # a few words after the name in --dataset help, where the name alone does not say it
    # Folder layouts (``Layout.name``) that hold this data set as downloaded, tried in this order.
    layouts: tuple[str, ...] = ()
    # What such a folder looks like, for the error when no layout is found.
    looks_like: str = ""
    # File prefix of its PraNet train/test lists in data/splits/pranet/ (None: no published split).
    pranet_list: str | None = None
    # A mix: the data sets whose images it joins. A plain data set draws from itself.
    parts: tuple[str, ...] = ()

    @property
    def sources(self) -> tuple[str, ...]:
        """The source collections its images come from (a mix: those of its parts)."""
        return self.parts or (self.name,)


DATASET_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec("synthetic", "the synthetic set", blurb="generated, for trying the toolkit"),
    DatasetSpec(
        "kvasir",
        "Kvasir-SEG",
        layouts=("kvasir-download", "kvasir-presplit"),
        looks_like="images/ + masks/ (Kvasir-SEG), train/images + train/masks (pre-split)",
        pranet_list="kvasir",
    ),
    DatasetSpec(
        "cvc",
        "CVC-ClinicDB",
        layouts=("cvc-png", "cvc-tif"),
        looks_like="PNG/Original + PNG/Ground Truth (CVC-ClinicDB) or Original/ + Ground Truth/ "
        "(CVC-ClinicDB TIF)",
        pranet_list="cvc_clinicdb",
    ),
    DatasetSpec(
        "polyp-mix",
        "Kvasir-SEG + CVC-ClinicDB",
        blurb="Kvasir-SEG + CVC-ClinicDB, the PraNet benchmark",
        parts=("kvasir", "cvc"),
    ),
)

DATASET_NAMES: tuple[str, ...] = tuple(spec.name for spec in DATASET_SPECS)
_BY_NAME = {spec.name: spec for spec in DATASET_SPECS}


def dataset_spec(name: str) -> DatasetSpec:
    """The entry of ``name``; a KeyError names the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASET_NAMES)}") from None


def dataset_of_layout(layout: str) -> str:
    """The data set a folder layout holds."""
    return next(spec.name for spec in DATASET_SPECS if layout in spec.layouts)


def dataset_help() -> str:
    """The --dataset help: every name, with its blurb where it has one."""
    names = [f"{s.name} ({s.blurb})" if s.blurb else s.name for s in DATASET_SPECS]
    return ", ".join(names[:-1]) + " or " + names[-1] + "."
