"""How a name reaches shipped weights (``microaunet_cli.weights``), pinned case by case so that a
changed comparison, suffix or branch fails a test (mutation group ``weights``, docs/mutation.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from microaunet_cli import weights


@pytest.fixture
def shelf(tmp_path, monkeypatch):
    """A stand-in weights folder with three shipped files, a card and a stray file; the working
    directory is an empty folder of its own."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for stem in ("zeta-polyp", "alpha-polyp", "mid-polyp", "beta.v2"):
        (folder / f"{stem}.pt").write_bytes(stem.encode())
    (folder / "alpha-polyp.md").write_text("# card\n")
    (folder / "notes.txt").write_text("not weights\n")
    monkeypatch.setattr(weights, "WEIGHTS_DIR", folder)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return folder


def test_the_names_are_the_pt_stems_sorted(shelf):
    assert weights.shipped_names() == ["alpha-polyp", "beta.v2", "mid-polyp", "zeta-polyp"]


def test_a_name_maps_to_its_file_and_card(shelf):
    assert weights.shipped_path("mid-polyp") == shelf / "mid-polyp.pt"
    assert weights.card_path("mid-polyp") == shelf / "mid-polyp.md"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpha-polyp", True),
        (Path("alpha-polyp"), True),
        ("x", True),
        ("", False),
        ("runs/alpha-polyp", False),
        ("runs\\alpha-polyp", False),
        ("/alpha-polyp", False),
        ("alpha-polyp.pt", False),
        ("model.onnx", False),
    ],
)
def test_what_looks_like_a_name(text, expected):
    assert weights.looks_like_name(text) is expected


def test_a_shipped_name_resolves_to_the_shipped_file(shelf):
    assert weights.resolve_checkpoint("alpha-polyp") == shelf / "alpha-polyp.pt"
    assert weights.resolve_checkpoint(Path("zeta-polyp")) == shelf / "zeta-polyp.pt"
    assert weights.resolve_checkpoint("beta.v2") == shelf / "beta.v2.pt"  # a dot in a name is fine


def test_an_unknown_name_or_a_path_comes_back_unchanged(shelf):
    for given in ("beta-polyp", "alpha", "alpha-polyp.pt", "runs/alpha-polyp", "notes"):
        assert weights.resolve_checkpoint(given) == Path(given)


def test_an_existing_file_or_folder_wins_over_a_shipped_name(shelf):
    Path("alpha-polyp").write_bytes(b"the user's own file")
    Path("mid-polyp").mkdir()
    assert weights.resolve_checkpoint("alpha-polyp") == Path("alpha-polyp")
    assert weights.resolve_checkpoint("mid-polyp") == Path("mid-polyp")
    assert weights.resolve_checkpoint("zeta-polyp") == shelf / "zeta-polyp.pt"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpha-polyp", "alpha-polyp"),
        ("ALPHA-Polyp", "alpha-polyp"),
        ("alpha-polyp.pt", "alpha-polyp"),
        ("Alpha-Polyp.PT", "alpha-polyp"),
        ("alpha-polp", "alpha-polyp"),
        ("zeta-polyps", "zeta-polyp"),
        ("beta.v2.pt", "beta.v2"),
        ("Mi-Polp.pt", "mid-polyp"),  # matched once the suffix is dropped, not before
        ("beta", None),
        ("omega-colon", None),
        ("", None),
        ("runs/alpha-polyp.pt", None),
        ("runs\\alpha-polyp", None),
    ],
)
def test_the_name_a_near_miss_meant(shelf, text, expected):
    assert weights.closest_name(text) == expected


def test_a_near_miss_is_answered_with_the_name_as_shipped(shelf):
    (shelf / "Kappa-Polyp.pt").write_bytes(b"k")
    assert weights.closest_name("kappa-polyp") == "Kappa-Polyp"
    assert weights.resolve_checkpoint("Kappa-Polyp") == shelf / "Kappa-Polyp.pt"


@pytest.mark.parametrize("size", [0, 5, (1 << 20) - 1, 1 << 20, (1 << 20) + 7, 3 << 20])
def test_the_checksum_is_sha256_of_the_whole_file(tmp_path, size):
    data = bytes((i * 7 + 3) % 251 for i in range(size))
    path = tmp_path / "f.pt"
    path.write_bytes(data)
    assert weights.sha256(path) == hashlib.sha256(data).hexdigest()
