"""The data set table (microaunet_cli/datasets.py) drives settings, layout detection, splits and help."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main
from data_fixtures import make_cvc_png, make_cvc_tif, make_kvasir, make_presplit
from pydantic import ValidationError

from microaunet_cli.cli.app import app
from microaunet_cli.config import DataSettings
from microaunet_cli.data import layouts
from microaunet_cli.data.layouts import detect_layout
from microaunet_cli.datasets import DATASET_NAMES, DATASET_SPECS, dataset_spec
from microaunet_cli.errors import DataError

_MAKERS = {
    "kvasir-download": lambda root: make_kvasir(root, n=3),
    "kvasir-presplit": lambda root: make_presplit(root, {"train": 3, "val": 2}),
    "cvc-png": lambda root: make_cvc_png(root, n=3, per_sequence=3),
    "cvc-tif": lambda root: make_cvc_tif(root, n=3),
}


def test_every_layout_of_the_table_has_a_detector_and_no_detector_is_unlisted():
    listed = {name for spec in DATASET_SPECS for name in spec.layouts}
    assert listed == set(layouts._DETECTORS)
    assert listed == set(_MAKERS)  # a new layout needs a fixture here too


@pytest.mark.parametrize("layout_name", sorted(_MAKERS))
def test_detection_names_the_layout_and_the_data_set_of_the_table(tmp_path: Path, layout_name: str):
    root = _MAKERS[layout_name](tmp_path / "download")
    found = detect_layout(Path(root))
    owner = next(spec for spec in DATASET_SPECS if layout_name in spec.layouts)
    assert (found.name, found.family) == (layout_name, owner.name)


def test_no_layout_error_describes_every_data_set_folder(tmp_path: Path):
    (tmp_path / "empty" / "stuff").mkdir(parents=True)
    with pytest.raises(DataError) as err:
        detect_layout(tmp_path / "empty")
    for spec in DATASET_SPECS:
        assert spec.looks_like in str(err.value)


@pytest.mark.parametrize("command", ["train-teacher", "distill", "prepare-data"])
def test_dataset_help_lists_every_entry(command: str):
    click_app = typer.main.get_command(app)
    option = next(p for p in click_app.commands[command].params if p.name == "dataset")
    for spec in DATASET_SPECS:
        assert spec.name in option.help
        if spec.blurb:
            assert spec.blurb in option.help


def test_settings_accept_exactly_the_table():
    for name in DATASET_NAMES:
        assert DataSettings(dataset=name).dataset == name
    with pytest.raises(ValidationError):
        DataSettings(dataset="etis")


def test_a_mix_draws_from_its_parts_and_a_plain_set_from_itself():
    assert dataset_spec("polyp-mix").sources == ("kvasir", "cvc")
    assert dataset_spec("kvasir").sources == ("kvasir",)
    assert all(p in DATASET_NAMES for spec in DATASET_SPECS for p in spec.parts)
    with pytest.raises(KeyError, match="known: synthetic"):
        dataset_spec("etis")
