"""The identity of a prepared data set as a training run used it, written into every checkpoint.

Two runs used the same data when their identities are equal. The digest covers what decides what a
network saw and is tested on: which image is in which split (the names), the content of every
resized array (the manifest's sha256), and the policy, split seed, size and fold. It leaves out what
can change without changing the data: creation time, source paths, the tool version, files that are
merely added to the folder (such as the original masks). Preparing the same data again gives the
same identity.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Fields compared between a teacher and its student, in the order a mismatch is reported.
FIELDS = ("dataset", "policy", "split_seed", "size", "fold", "digest")
# What each field is, for error messages that say where it comes from.
FIELD_SOURCES = {
    "dataset": "the data set (prepare-data --dataset)",
    "policy": "the split policy (prepare-data --split)",
    "split_seed": "the seed of the split (prepare-data --seed)",
    "size": "the image size (prepare-data --size)",
    "fold": "the k-fold validation fold (--fold)",
    "digest": "the content digest (split membership and array hashes)",
}


def _sha256(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def data_identity(prepared: Any, fold: int | None = None) -> dict[str, Any]:
    """The identity of ``prepared`` (a :class:`PreparedData`) as used with ``fold``."""
    manifest = prepared.manifest
    membership = {name: prepared.names_of(name) for name in manifest["splits"]}
    content = {
        name: [split["images"]["sha256"], split["masks"]["sha256"]]
        for name, split in manifest["splits"].items()
    }
    identity = {
        "dataset": manifest["dataset"],
        "policy": manifest["policy"],
        "split_seed": manifest["seed"],
        "size": int(manifest["size"]),
        "fold": fold,
    }
    identity["membership"] = _sha256(membership)  # independent of the size: the same split at 128 and 256
    identity["digest"] = _sha256({**identity, "content": content})
    # Per split, outside the digest (identities recorded before it stay equal to today's): lets evaluate
    # accept a folder whose test split is the checkpoint's own, divided otherwise elsewhere.
    identity["split_membership"] = {name: _sha256(sorted(names)) for name, names in membership.items()}
    return identity


def differences(
    expected: dict[str, Any], found: dict[str, Any], fields: tuple[str, ...] = FIELDS
) -> list[str]:
    """The fields of ``fields`` in which two identities differ, in that order."""
    return [f for f in fields if expected.get(f) != found.get(f)]


def describe(field: str, ours: dict[str, Any], theirs: dict[str, Any], theirs_label: str) -> str:
    """One mismatch for an error message: "the split policy (prepare-data --split): 'random' for the
    teacher, 'pranet' here"."""
    mine, other = ours.get(field), theirs.get(field)
    if field == "digest":
        mine, other = str(mine)[:12], str(other)[:12]
    return f"{FIELD_SOURCES[field]}: {other!r} for {theirs_label}, {mine!r} here"
