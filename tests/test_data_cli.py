"""The prepare-data command: settings from options, files and --set; one-line errors; shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures import make_kvasir
from typer.testing import CliRunner

from microaunet_cli.cli.app import app
from microaunet_cli.config import load_settings
from microaunet_cli.data import PrepareSettings, open_prepared

PREPARE_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "prepare").glob("*.yaml"))
runner = CliRunner()


@pytest.mark.parametrize("path", PREPARE_CONFIGS, ids=[p.name for p in PREPARE_CONFIGS])
def test_shipped_prepare_configs_validate(path):
    assert isinstance(load_settings(PrepareSettings, config=path, environ={}), PrepareSettings)


def test_synthetic_default_runs_and_reruns_as_no_op(tmp_path):
    args = ["prepare-data", "--out", str(tmp_path / "syn"), "--size", "32", "--count", "16", "--workers", "1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "prepared" in first.output and open_prepared(tmp_path / "syn").dataset == "synthetic"
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "already up to date" in second.output


def test_options_config_and_set_are_combined(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("dataset: kvasir\nsplit: random\nsize: 64\n")
    result = runner.invoke(
        app,
        [
            "prepare-data",
            "--config",
            str(cfg),
            "--size",
            "96",
            "--set",
            "seed=7",
            "--skip-bad",
            "--print-config",
        ],
    )
    assert result.exit_code == 0, result.output
    for line in ("dataset: kvasir", "split: random", "size: 96", "seed: 7", "skip_bad: true"):
        assert line in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "100"], "invalid setting 'size'"),
        (["--split", "sideways"], "invalid setting 'split'"),
        (["--dataset", "imagenet"], "invalid setting 'dataset'"),
        (["--set", "colour=red"], "unknown setting 'colour'"),
    ],
)
def test_bad_settings_are_one_line_errors(args, message):
    result = runner.invoke(app, ["prepare-data", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_data_errors_exit_non_zero_without_traceback(tmp_path):
    result = runner.invoke(
        app,
        [
            "prepare-data",
            "--dataset",
            "kvasir",
            "--src",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "folder not found" in result.output and "Traceback" not in result.output
    src = make_kvasir(tmp_path / "k", n=4)
    (src / "masks" / "img001.jpg").unlink()
    result = runner.invoke(
        app,
        [
            "prepare-data",
            "--dataset",
            "kvasir",
            "--src",
            str(src),
            "--split",
            "random",
            "--out",
            str(tmp_path / "o"),
            "--size",
            "32",
        ],
    )
    assert result.exit_code == 2 and "img001.jpg" in result.output and "--skip-bad" in result.output
