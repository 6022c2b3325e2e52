"""``evaluate --external``: a labelled folder never trained on, scored at original resolution.

The same images prepared as a test split and passed as an external folder, in either layout, must
give the same scores: both go through prepare-data's readers and the same scoring.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import pair, write_image, write_mask, write_tif
from helpers import make_checkpoint
from typer.testing import CliRunner

from microaunet_cli.checkpoints import load_checkpoint
from microaunet_cli.cli.app import app
from microaunet_cli.data import PrepareSettings, open_prepared, prepare_dataset
from microaunet_cli.errors import DataError
from microaunet_cli.evaluation.evaluate import evaluate_checkpoint

SIZE = 64
# Formats cycled over the cases: every reader prepare-data has.
FORMATS = (".png", ".jpg", ".tif", ".bmp")
SIZES = ((96, 64), (70, 110), (64, 48))


def _write_pair(image_path: Path, mask_path: Path, seed: int) -> None:
    width, height = SIZES[seed % len(SIZES)]
    image, mask = pair(seed, width, height)
    if image_path.suffix == ".tif":
        write_tif(image_path, image)
        write_tif(mask_path, mask * np.uint8(255))
    else:
        write_image(image_path, image)
        write_mask(mask_path.with_suffix(".png"), mask)


def _mask_file(folder: Path, stem: str) -> Path:
    return next(folder.glob(f"{stem}.*"))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("src") / "kvasir"
    for i in range(16):
        ext = FORMATS[i % len(FORMATS)]
        _write_pair(root / "images" / f"c{i:02d}{ext}", root / "masks" / f"c{i:02d}{ext}", i)
    return root


@pytest.fixture(scope="module")
def prepared(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prep") / "kvasir"
    prepare_dataset(
        PrepareSettings(
            dataset="kvasir", src=source, out=out, size=SIZE, split="random", test_fraction=0.5, workers=1
        )
    )
    return out


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, prepared) -> Path:
    return make_checkpoint(
        tmp_path_factory.mktemp("run") / "checkpoints" / "best.pt",
        size=SIZE,
        dataset="kvasir",
        prepared_dir=prepared,
    )


def _test_names(prepared: Path) -> list[str]:
    return list(open_prepared(prepared).load("test").names)


def _two_folders(source: Path, names: list[str], root: Path) -> Path:
    """images/ + masks/ paired by stem."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name in names:
        image = next((source / "images").glob(f"{name}.*"))
        mask = _mask_file(source / "masks", name)
        shutil.copy(image, root / "images" / image.name)
        shutil.copy(mask, root / "masks" / mask.name)
    return root


def _numbered(source: Path, names: list[str], root: Path) -> Path:
    """One folder: N.ext images and pN.ext masks (CVC-ColonDB / ETIS as first distributed)."""
    root.mkdir(parents=True)
    for n, name in enumerate(names, start=1):
        image = next((source / "images").glob(f"{name}.*"))
        mask = _mask_file(source / "masks", name)
        shutil.copy(image, root / f"{n}{image.suffix}")
        shutil.copy(mask, root / f"p{n}{mask.suffix}")
    return root


def _same_scores(a: dict, b: dict) -> None:
    for section in ("per_image", "pooled"):
        assert a[section] == pytest.approx(b[section], abs=1e-12), section
    assert a["resized"]["per_image"] == pytest.approx(b["resized"]["per_image"], abs=1e-12)
    assert a["n_images"] == b["n_images"]


@pytest.mark.parametrize("layout", ["images+masks", "N+pN"])
def test_external_folder_scores_as_the_same_images_prepared(layout, source, prepared, ckpt, tmp_path):
    names = _test_names(prepared)
    assert len({next((source / "images").glob(f"{n}.*")).suffix for n in names}) >= 3
    build = _two_folders if layout == "images+masks" else _numbered
    folder = build(source, names, tmp_path / "ext")
    as_prepared = evaluate_checkpoint(ckpt, out_dir=tmp_path / "prep-eval", device="cpu", worst=0)
    external = evaluate_checkpoint(
        ckpt, external=folder, out_dir=tmp_path / "ext-eval", device="cpu", worst=2
    )
    assert external.layout == layout
    result = external.splits["ext"]
    assert result["resolution"] == "original"
    _same_scores(result, as_prepared.splits["test"])
    rows = list(csv.DictReader((tmp_path / "ext-eval" / "per_case.csv").open()))
    assert len(rows) == len(names) and {r["split"] for r in rows} == {"ext"}
    assert len(list((tmp_path / "ext-eval" / "overlays" / "ext").glob("*.png"))) == 2


def test_every_format_is_read(source, ckpt, tmp_path):
    folder = _two_folders(source, [f"c{i:02d}" for i in range(8)], tmp_path / "all")
    summary = evaluate_checkpoint(ckpt, external=folder, out_dir=tmp_path / "o", device="cpu", worst=0)
    assert summary.splits["all"]["n_images"] == 8


@pytest.fixture
def bad_folder(source, tmp_path) -> Path:
    folder = _two_folders(source, ["c00", "c01", "c02", "c03"], tmp_path / "bad")
    (folder / "images" / "lonely.png").write_bytes((folder / "images" / "c00.png").read_bytes())  # no mask
    (folder / "images" / "c01.jpg").write_bytes(b"not a jpeg")  # unreadable
    _write_pair(folder / "images" / "odd.png", tmp_path / "unused.png", 0)
    width, height = SIZES[1]
    write_mask(
        folder / "masks" / "odd.png", np.zeros((height, width), np.uint8)
    )  # another size than its image
    return folder


def test_bad_files_are_named(bad_folder, ckpt, tmp_path):
    with pytest.raises(DataError) as err:
        evaluate_checkpoint(ckpt, external=bad_folder, out_dir=tmp_path / "o", device="cpu")
    message = str(err.value)
    for name in ("lonely.png", "c01.jpg", "odd.png"):
        assert name in message
    assert "--skip-bad" in message


def test_skip_bad_scores_the_rest_and_lists_them(bad_folder, ckpt, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--ckpt",
            str(ckpt),
            "--external",
            str(bad_folder),
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cpu",
            "--skip-bad",
            "--worst",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["splits"]["bad"]["n_images"] == 3
    skipped = " ".join(item["file"] for item in summary["skipped"])
    for name in ("lonely.png", "c01.jpg", "odd.png"):
        assert name in skipped
    assert "skipped" in result.output


def test_folder_without_labelled_images_says_what_is_expected(ckpt, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="images/ and masks/"):
        evaluate_checkpoint(ckpt, external=tmp_path / "empty", device="cpu")


@pytest.fixture(scope="module")
def ckpt_with_identity(ckpt, prepared, tmp_path_factory) -> Path:
    """The checkpoint as training writes it since provenance is recorded: with its data identity."""
    saved = load_checkpoint(ckpt)
    saved["data_identity"] = open_prepared(prepared).identity()
    path = tmp_path_factory.mktemp("run-id") / "checkpoints" / "best.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(saved, path)
    return path


def test_a_copy_of_a_training_image_is_refused_whatever_its_name(
    source, prepared, ckpt_with_identity, tmp_path
):
    test = _test_names(prepared)
    trained_on = open_prepared(prepared).load("train").names[0]
    clean = _two_folders(source, test, tmp_path / "clean")
    summary = evaluate_checkpoint(ckpt_with_identity, external=clean, out_dir=tmp_path / "o", device="cpu")
    assert summary.data_check.startswith(f"external folder: none of its {len(test)} images is one")

    mixed = _numbered(source, [*test, trained_on], tmp_path / "mixed")  # renamed N.ext: found by content
    with pytest.raises(DataError, match=rf"1 of its {len(test) + 1} images are copies.*train/{trained_on}"):
        evaluate_checkpoint(ckpt_with_identity, external=mixed, out_dir=tmp_path / "o2", device="cpu")


def test_external_is_scored_unchecked_when_the_training_data_is_not_there(
    source, prepared, ckpt, ckpt_with_identity, tmp_path
):
    folder = _two_folders(source, _test_names(prepared), tmp_path / "ext")
    legacy = evaluate_checkpoint(ckpt, external=folder, out_dir=tmp_path / "o", device="cpu", worst=0)
    assert "not checked" in legacy.data_check and "no data identity" in legacy.data_check

    saved = load_checkpoint(ckpt_with_identity)
    saved["settings"]["data"]["prepared_dir"] = str(tmp_path / "moved")
    elsewhere = tmp_path / "run" / "checkpoints" / "best.pt"
    elsewhere.parent.mkdir(parents=True)
    torch.save(saved, elsewhere)
    summary = evaluate_checkpoint(elsewhere, external=folder, out_dir=tmp_path / "o2", device="cpu", worst=0)
    assert "not checked" in summary.data_check and "is not here" in summary.data_check
