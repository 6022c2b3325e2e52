"""Open a prepared folder for training and evaluation: memory-mapped arrays, checked cheaply on open.

Opening reads the manifest and each array's header and size (milliseconds); the full sha256 check of
every byte is ``PreparedData.verify()``, for when a folder is in doubt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from microaunet_cli.data.identity import data_identity
from microaunet_cli.data.manifest import MANIFEST, array_infos, file_problem, read_manifest
from microaunet_cli.data.original_masks import OriginalMasks
from microaunet_cli.data.store import file_sha256
from microaunet_cli.datasets import DATASET_NAMES
from microaunet_cli.errors import DataError

if TYPE_CHECKING:
    import torch

# A whole split goes to the GPU only when it takes at most this share of the free memory.
ON_DEVICE_SHARE = 0.5


@dataclass
class SplitArrays:
    """One split: N×H×W×3 uint8 RGB images, N×H×W uint8 {0,1} masks, and the source names."""

    images: np.ndarray
    masks: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def nbytes(self) -> int:
        return int(self.images.nbytes + self.masks.nbytes)

    def fits_on(self, device: str | torch.device, share: float = ON_DEVICE_SHARE) -> bool:
        """Whether the uint8 arrays take at most ``share`` of the free memory of a CUDA ``device``."""
        import torch

        device = torch.device(device)
        if device.type != "cuda":
            return device.type == "cpu"
        free, _ = torch.cuda.mem_get_info(device)
        return self.nbytes <= share * free

    def to_tensors(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 NHWC images and NHW masks on ``device`` (on the CPU they share the mapped memory)."""
        import torch

        images = torch.from_numpy(self.images)
        masks = torch.from_numpy(self.masks)
        return images.to(device), masks.to(device)


@dataclass
class PreparedData:
    root: Path
    manifest: dict

    @property
    def dataset(self) -> str:
        return self.manifest["dataset"]

    @property
    def size(self) -> int:
        return int(self.manifest["size"])

    @property
    def mean(self) -> tuple[float, float, float]:
        return tuple(self.manifest["mean"])  # type: ignore[return-value]

    @property
    def std(self) -> tuple[float, float, float]:
        return tuple(self.manifest["std"])  # type: ignore[return-value]

    def normalization(self, fold: int | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std to standardise inputs with: of the training images, and for k-fold data of the
        folds that train (the held-out fold excluded). Folders prepared before per-fold statistics were
        stored fall back to the whole train block."""
        per_fold = (self.manifest.get("kfold") or {}).get("normalization")
        if per_fold and fold is not None:
            return tuple(per_fold[fold]["mean"]), tuple(per_fold[fold]["std"])
        return self.mean, self.std

    @property
    def is_kfold(self) -> bool:
        return self.manifest.get("kfold") is not None

    @property
    def folds(self) -> int:
        return int(self.manifest["kfold"]["k"]) if self.is_kfold else 0

    @property
    def splits(self) -> list[str]:
        stored = list(self.manifest["splits"])
        # kfold data stores one train block; "val" is the chosen fold of it.
        if self.is_kfold and "val" not in stored:
            stored.insert(1, "val")
        return stored

    @property
    def test_splits(self) -> list[str]:
        return list(self.manifest["test_splits"])

    def load(self, split: str, fold: int | None = None) -> SplitArrays:
        """The arrays of ``split``; for kfold data ``fold`` picks which fold is "val"."""
        if split not in self.splits:
            raise DataError(f"{self.root}: no split {split!r}; it has {', '.join(self.splits)}.")
        by_fold = self.is_kfold and split in ("train", "val")
        self._check_fold(fold, needed=by_fold)
        return self._fold_part(split, fold) if by_fold else self._stored(split)  # type: ignore[arg-type]

    @property
    def has_original_masks(self) -> bool:
        """False for folders prepared before original masks were kept: those score at the resized size."""
        return all("original_masks" in split for split in self.manifest["splits"].values())

    def original_masks(self, split: str, fold: int | None = None) -> OriginalMasks | None:
        """Each image's mask at its own resolution, in the order of ``load(split, fold)``; None for
        folders prepared before they were kept."""
        if not self.has_original_masks:
            return None
        stored = "train" if self.is_kfold and split in ("train", "val") else split
        masks = OriginalMasks.open(self.root / stored)
        if stored == split:
            return masks
        start, end = self.manifest["kfold"]["ranges"][fold]
        return (
            masks.take(slice(start, end)) if split == "val" else masks.take(np.r_[0:start, end : len(masks)])
        )

    def names_of(self, stored_split: str) -> list[str]:
        return (
            (self.root / self.manifest["splits"][stored_split]["names"])
            .read_text(encoding="utf-8")
            .splitlines()
        )

    def identity(self, fold: int | None = None) -> dict:
        """What a checkpoint records about the data it was trained on (see ``data.identity``)."""
        return data_identity(self, fold)

    def verify(self) -> None:
        """Hash every array against the manifest (reads every byte); raises DataError naming the
        first file whose content differs."""
        for split in self.manifest["splits"].values():
            for info in array_infos(split):
                path = self.root / info["file"]
                if file_sha256(path) != info["sha256"]:
                    raise DataError(
                        f"{path}: content differs from {self.root / MANIFEST} (sha256); the "
                        f"file was changed or damaged. {_fix(self.root, self.dataset, ' --force')}"
                    )

    def _check_fold(self, fold: int | None, needed: bool) -> None:
        """A fold is needed for train/val of kfold data; test splits of kfold data take any (or none)."""
        if needed and fold is None:
            raise DataError(
                f"{self.root} was prepared with {self.folds} folds: choose one with "
                f"--set data.fold=K (0 to {self.folds - 1})."
            )
        if self.is_kfold and fold is not None and not 0 <= fold < self.folds:
            raise DataError(f"data.fold={fold} is out of range: {self.root} has folds 0 to {self.folds - 1}.")
        if not self.is_kfold and fold is not None:
            raise DataError(
                f"data.fold={fold} is set but {self.root} was not prepared with the kfold "
                f"policy; unset data.fold, or prepare again with --split kfold."
            )

    def _stored(self, split: str) -> SplitArrays:
        info = self.manifest["splits"][split]
        # Copy-on-write maps: callers may modify a batch in place without touching the files.
        images = np.load(self.root / info["images"]["file"], mmap_mode="c")
        masks = np.load(self.root / info["masks"]["file"], mmap_mode="c")
        names = self.names_of(split)
        if len(names) != len(images):
            raise DataError(
                f"{self.root / info['names']}: {len(names)} names for {len(images)} images. "
                f"{_fix(self.root, self.dataset)}"
            )
        return SplitArrays(images, masks, names)

    def _fold_part(self, split: str, fold: int) -> SplitArrays:
        whole = self._stored("train")
        start, end = self.manifest["kfold"]["ranges"][fold]
        if split == "val":  # one contiguous block: still a memory map
            return SplitArrays(whole.images[start:end], whole.masks[start:end], whole.names[start:end])
        keep = np.r_[0:start, end : len(whole)]
        return SplitArrays(whole.images[keep], whole.masks[keep], [whole.names[i] for i in keep])


def open_prepared(path: str | Path) -> PreparedData:
    """Open the folder written by `prepare-data`, checking its files cheaply against the manifest."""
    root = Path(path)
    dataset = root.name if root.name in DATASET_NAMES else "<dataset>"
    if not root.is_dir():
        raise DataError(f"{root}: no prepared data here. {_fix(root, dataset)}")
    manifest = read_manifest(root)
    if manifest is None:
        raise DataError(
            f"{root}: {MANIFEST} is missing or unreadable (never prepared, an interrupted "
            f"run, or an older format). {_fix(root, dataset)}"
        )
    for split in manifest["splits"].values():
        for info in array_infos(split):
            problem = file_problem(root, info)
            if problem is not None:
                raise DataError(f"{problem}. {_fix(root, manifest.get('dataset', dataset))}")
    return PreparedData(root, manifest)


def _fix(root: Path, dataset: str, extra: str = "") -> str:
    src = "" if dataset == "synthetic" else " --src DOWNLOADED_FOLDER"
    return f"Run `microaunet prepare-data --dataset {dataset}{src} --out {root}{extra}`."
