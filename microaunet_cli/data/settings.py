"""Settings of `prepare-data`: what to read, how to split it, and at which size to store it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from microaunet_cli.config.settings import Dataset, Section, Side

Policy = Literal["pranet", "random", "sequence", "predefined", "kfold"]
POLICIES = ("pranet", "random", "sequence", "predefined", "kfold")


class PrepareSettings(Section):
    dataset: Dataset = "synthetic"
    # Folder as downloaded. Optional for synthetic (generated into <out>/raw); for polyp-mix the folder
    # holding both Kvasir-SEG and CVC-ClinicDB (or give kvasir_src / cvc_src).
    src: Path | None = None
    # polyp-mix only: explicit folders of its two parts, when they do not sit side by side under src.
    kvasir_src: Path | None = None
    cvc_src: Path | None = None
    # Output folder; None means data/<dataset> under the working directory, where training looks.
    out: Path | None = None
    # None: pranet for the real data sets (the published benchmark), random for synthetic.
    split: Policy | None = None
    # Square side in pixels of the stored arrays: a multiple of 32, since the networks halve the
    # resolution five times (max-pools, or a strided stem and four pools in microaunet_fast).
    size: Side = 256
    seed: int = 42
    # Share of the training side held out for validation (never taken from the test side).
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    # random / sequence / kfold: share of all images held out as the test side.
    test_fraction: float = Field(default=0.2, ge=0, lt=1)
    # kfold: number of folds of the training side; training picks one with data.fold.
    folds: int = Field(default=5, ge=2, le=20)
    # Leave out unreadable or inconsistent files (listed in the manifest) instead of stopping.
    skip_bad: bool = False
    # Decoding processes; None uses every core (at most 8). 1 decodes in this process.
    workers: int | None = Field(default=None, ge=1)
    # synthetic: number of images generated (about a second per 100 on one core).
    synthetic_count: int = Field(default=200, ge=4)
    # Prepare again even when the output is up to date.
    force: bool = False

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> PrepareSettings:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% of the images to train on")
        return self

    def resolved_out(self) -> Path:
        return self.out if self.out is not None else Path("data") / self.dataset

    def resolved_split(self) -> str:
        if self.split is not None:
            return self.split
        return "random" if self.dataset == "synthetic" else "pranet"
