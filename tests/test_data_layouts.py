"""Layout detection: each distributed layout is recognised and named; pairing problems are listed."""

from __future__ import annotations

import pytest
from data_fixtures import make_cvc_png, make_cvc_tif, make_kvasir, make_presplit, pair, write_image

from microaunet_cli.data.layouts import detect_layout, find_layouts
from microaunet_cli.errors import DataError


def test_kvasir_download(tmp_path):
    layout = detect_layout(make_kvasir(tmp_path / "Kvasir-SEG", n=5))
    assert (layout.name, layout.family, len(layout.samples), layout.problems) == (
        "kvasir-download",
        "kvasir",
        5,
        [],
    )


def test_kvasir_presplit_keeps_parts(tmp_path):
    layout = detect_layout(make_presplit(tmp_path, {"train": 4, "val": 2}))
    assert layout.name == "kvasir-presplit"
    assert sorted({s.part for s in layout.samples}) == ["train", "val"]


@pytest.mark.parametrize("where", ["root", "png"])
def test_cvc_png_from_root_or_png_folder(tmp_path, where):
    root = make_cvc_png(tmp_path / "CVC-ClinicDB", n=6)
    layout = detect_layout(root if where == "root" else root / "PNG")
    assert layout.name == "cvc-png" and layout.family == "cvc"
    assert [s.name for s in layout.samples] == ["1", "2", "3", "4", "5", "6"]  # numeric order
    assert layout.samples[3].group == "2"  # metadata.csv found beside PNG/ either way


def test_cvc_tif(tmp_path):
    layout = detect_layout(make_cvc_tif(tmp_path / "tif", n=3))
    assert layout.name == "cvc-tif" and len(layout.samples) == 3


def test_single_nested_folder_is_found(tmp_path):
    make_kvasir(tmp_path / "outer" / "Kvasir-SEG", n=3)  # a zip that extracts into its own folder
    assert detect_layout(tmp_path / "outer").name == "kvasir-download"


def test_hidden_files_ignored_and_upper_case_accepted(tmp_path):
    root = make_kvasir(tmp_path, n=3)
    for junk in (".DS_Store", "Thumbs.db", "._img000.jpg", "desktop.ini"):
        (root / "images" / junk).write_bytes(b"junk")
        (root / "masks" / junk).write_bytes(b"junk")
    image, _mask = pair(9)
    write_image(root / "images" / "UPPER.JPG", image)
    write_image(root / "masks" / "UPPER.PNG", image)
    layout = detect_layout(root)
    assert sorted(s.name for s in layout.samples) == ["UPPER", "img000", "img001", "img002"]
    assert layout.problems == []


def test_unpaired_files_are_problems(tmp_path):
    root = make_kvasir(tmp_path, n=3)
    (root / "masks" / "img001.jpg").unlink()
    (root / "images" / "img002.jpg").unlink()
    layout = detect_layout(root)
    reasons = " | ".join(f"{f}: {r}" for f, r in layout.problems)
    assert "img001.jpg: has no mask" in reasons and "img002.jpg: is a mask without an image" in reasons
    assert [s.name for s in layout.samples] == ["img000"]


def test_missing_and_empty_and_unknown_folders(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        detect_layout(tmp_path / "absent")
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        detect_layout(tmp_path / "empty")
    (tmp_path / "other" / "stuff").mkdir(parents=True)
    with pytest.raises(DataError, match="no known data set layout"):
        detect_layout(tmp_path / "other")


def test_find_layouts_side_by_side(tmp_path):
    make_kvasir(tmp_path / "Kvasir-SEG", n=3)
    make_cvc_png(tmp_path / "CVC-ClinicDB", n=4)
    make_cvc_tif(tmp_path / "CVC-ClinicDB-TIF-sample", n=2)
    found = {(lay.family, lay.name, len(lay.samples)) for lay in find_layouts(tmp_path)}
    assert found == {("kvasir", "kvasir-download", 3), ("cvc", "cvc-png", 4), ("cvc", "cvc-tif", 2)}
