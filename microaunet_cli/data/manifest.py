"""The manifest that marks a prepared folder complete, and cheap checks that its files still match it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"
# Bump when the layout of prepared folders changes; older folders are then prepared again.
FORMAT_VERSION = 1


def read_manifest(out: Path) -> dict | None:
    """The manifest in ``out``, or None when absent or unreadable (an interrupted or foreign folder)."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT_VERSION else None


def file_problem(out: Path, info: dict) -> str | None:
    """Why the array described by ``info`` does not match the manifest (size and header only), or None."""
    path = out / info["file"]
    if not path.is_file():
        return f"{path} is missing"
    if path.stat().st_size != info["bytes"]:
        return f"{path} has {path.stat().st_size} bytes, the manifest says {info['bytes']}"
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        return f"{path} is not a readable .npy file ({exc})"
    if list(array.shape) != info["shape"] or str(array.dtype) != info["dtype"]:
        return (
            f"{path} holds {array.dtype}{list(array.shape)}, the manifest says {info['dtype']}{info['shape']}"
        )
    return None


def array_infos(split: dict) -> list[dict]:
    """The manifest entries of every array file of a split: images, masks and, in folders prepared
    since they are kept, the original masks (data and index)."""
    originals = split.get("original_masks") or {}
    return [split["images"], split["masks"], *(originals[k] for k in ("data", "index") if k in originals)]


def split_files_intact(out: Path, manifest: dict) -> bool:
    for split in manifest.get("splits", {}).values():
        for info in array_infos(split):
            if file_problem(out, info) is not None:
                return False
        if not (out / split["names"]).is_file():
            return False
    return True
