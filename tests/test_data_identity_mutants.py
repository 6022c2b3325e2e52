"""The data identity written into checkpoints (data/identity.py): its digest is a stored format, so it
is checked against a digest computed here from the documented payload, and each field it covers is
shown to change it while what it leaves out is shown not to."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from microaunet_cli.data.identity import FIELDS, data_identity, describe, differences


class Prepared:
    """The two things data_identity reads of a PreparedData: its manifest and each split's names."""

    def __init__(self, manifest: dict, names: dict[str, list[str]]) -> None:
        self.manifest = manifest
        self._names = names

    def names_of(self, split: str) -> list[str]:
        return self._names[split]


MANIFEST = {
    "dataset": "kvasir",
    "policy": "random",
    "seed": 7,
    "size": 64,
    "created": "2026-01-01T00:00:00",
    "source": "/somewhere/kvasir",
    "splits": {
        "train": {"images": {"sha256": "a1"}, "masks": {"sha256": "b1"}, "original_masks": {"x": 1}},
        "test": {"images": {"sha256": "a2"}, "masks": {"sha256": "b2"}},
    },
}
NAMES = {"train": ["c3", "c1"], "test": ["c2"]}


def _sha(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _identity(fold=None, **changes) -> dict:
    manifest = copy.deepcopy(MANIFEST)
    names = copy.deepcopy(NAMES)
    for key, value in changes.items():
        if key == "names":
            names = value
        elif key == "splits":
            manifest["splits"] = value
        else:
            manifest[key] = value
    return data_identity(Prepared(manifest, names), fold)


def test_identity_fields_and_digest_by_hand():
    got = _identity(fold=2)
    membership = _sha({"train": ["c3", "c1"], "test": ["c2"]})
    fields = {"dataset": "kvasir", "policy": "random", "split_seed": 7, "size": 64, "fold": 2}
    digest = _sha(
        {**fields, "membership": membership, "content": {"train": ["a1", "b1"], "test": ["a2", "b2"]}}
    )
    assert got == {
        **fields,
        "membership": membership,
        "digest": digest,
        "split_membership": {"train": _sha(["c1", "c3"]), "test": _sha(["c2"])},
    }


def test_size_is_recorded_as_an_integer():
    assert _identity(size="64")["size"] == 64
    assert _identity(size="64")["digest"] == _identity()["digest"]


@pytest.mark.parametrize(
    "changes",
    [
        {"dataset": "cvc"},
        {"policy": "pranet"},
        {"seed": 8},
        {"size": 128},
        {"fold": 1},
        {"names": {"train": ["c3"], "test": ["c2", "c1"]}},
        {"splits": {**MANIFEST["splits"], "test": {"images": {"sha256": "zz"}, "masks": {"sha256": "b2"}}}},
        {"splits": {**MANIFEST["splits"], "test": {"images": {"sha256": "a2"}, "masks": {"sha256": "zz"}}}},
    ],
)
def test_every_covered_field_changes_the_digest(changes):
    fold = changes.pop("fold", None)
    assert _identity(fold, **changes)["digest"] != _identity()["digest"]


def test_what_is_left_out_does_not_change_the_digest():
    same = _identity(created="2027-05-05", source="/elsewhere", tool_version="9.9")
    assert same["digest"] == _identity()["digest"]
    splits = copy.deepcopy(MANIFEST["splits"])
    del splits["train"]["original_masks"]
    assert _identity(splits=splits)["digest"] == _identity()["digest"]


def test_membership_ignores_the_size_and_split_membership_the_order():
    assert _identity(size=256)["membership"] == _identity()["membership"]
    shuffled = _identity(names={"train": ["c1", "c3"], "test": ["c2"]})
    assert shuffled["split_membership"] == _identity()["split_membership"]
    moved = _identity(names={"train": ["c3"], "test": ["c2", "c1"]})
    assert moved["split_membership"]["test"] != _identity()["split_membership"]["test"]


def test_differences_in_field_order_and_missing_fields():
    ours = {"dataset": "kvasir", "policy": "random", "split_seed": 1, "size": 64, "fold": None, "digest": "d"}
    theirs = {**ours, "digest": "e", "policy": "pranet"}
    assert FIELDS == ("dataset", "policy", "split_seed", "size", "fold", "digest")
    assert differences(ours, theirs) == ["policy", "digest"]
    assert differences(ours, dict(ours)) == []
    assert differences(ours, {k: v for k, v in ours.items() if k != "size"}) == ["size"]
    assert differences(ours, theirs, ("digest", "dataset")) == ["digest"]


def test_describe_says_where_each_value_comes_from():
    ours, theirs = {"policy": "pranet"}, {"policy": "random"}
    assert describe("policy", ours, theirs, "the teacher") == (
        "the split policy (prepare-data --split): 'random' for the teacher, 'pranet' here"
    )
    ours, theirs = {"digest": "0123456789abcdefXYZ"}, {"digest": "fedcba9876543210XYZ"}
    assert describe("digest", ours, theirs, "the checkpoint") == (
        "the content digest (split membership and array hashes): 'fedcba987654' for the checkpoint, "
        "'0123456789ab' here"
    )
    assert describe("fold", {"fold": None}, {"fold": 3}, "the teacher") == (
        "the k-fold validation fold (--fold): 3 for the teacher, None here"
    )
