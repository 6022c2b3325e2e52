from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from microaunet_cli.cli.app import app
from microaunet_cli.config import RunSettings, load_settings
from microaunet_cli.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
runner = CliRunner()


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_validates(path):
    settings = load_settings(RunSettings, config=path, environ={})
    assert isinstance(settings, RunSettings)


def test_shipped_configs_exist():
    assert len(CONFIGS) >= 2


def test_precedence_defaults_yaml_env_options_set(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("optim:\n  lr: 0.002\ntrain:\n  epochs: 10\n  batch_size: 4\n")
    s = load_settings(
        RunSettings,
        config=cfg,
        environ={"MICROAUNET_TRAIN__EPOCHS": "20", "MICROAUNET_TRAIN__BATCH_SIZE": "6"},
        options={"train.batch_size": 12, "train.seed": None},
        sets=["optim.lr=5e-4"],
    )
    assert s.optim.lr == 5e-4  # --set beats the file
    assert s.train.epochs == 20  # environment beats the file
    assert s.train.batch_size == 12  # a named option beats the environment
    assert s.train.seed == 42  # an option not given keeps the default
    assert s.optim.weight_decay == 1e-2


def test_unknown_set_key_names_key_and_source():
    with pytest.raises(ConfigError) as exc:
        load_settings(RunSettings, sets=["nosuch.key=1"], environ={})
    msg = str(exc.value)
    assert "nosuch" in msg and "--set nosuch.key" in msg and "allowed here: data, model" in msg
    assert "\n" not in msg


def test_misspelt_yaml_key_names_file_and_allowed_keys(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("optim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(RunSettings, config=cfg, environ={})
    msg = str(exc.value)
    assert "optim.lrr" in msg and str(cfg) in msg and "lr, weight_decay" in msg


def test_wrong_type_names_value_and_source():
    with pytest.raises(
        ConfigError, match=r"train.epochs' = 'many' \(from environment MICROAUNET_TRAIN__EPOCHS\)"
    ):
        load_settings(RunSettings, environ={"MICROAUNET_TRAIN__EPOCHS": "many"})


def test_unknown_model_name_is_a_settings_error():
    with pytest.raises(ConfigError, match="model.name.*malunet, microaunet"):
        load_settings(RunSettings, sets=["model.name=resnet"], environ={})


def test_size_must_be_multiple_of_32():
    with pytest.raises(ConfigError, match="multiple of 32"):
        load_settings(RunSettings, sets=["data.size=100"], environ={})


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("optim: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(RunSettings, config=bad, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(RunSettings, config=tmp_path / "missing.yaml", environ={})


def test_malformed_set():
    with pytest.raises(ConfigError, match="dotted.key=value"):
        load_settings(RunSettings, sets=["optim.lr"], environ={})


def test_cli_error_is_one_line_without_traceback():
    result = runner.invoke(app, ["config", "--set", "nosuch.key=1"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "nosuch" in lines[0] and "--set nosuch.key" in lines[0]


def test_cli_print_config_and_models():
    result = runner.invoke(app, ["config", "--set", "optim.lr=0.005"])
    assert result.exit_code == 0
    assert "lr: 0.005" in result.output
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    assert "177,943" in result.output and "84,281" in result.output


def test_cli_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("microaunet ")


def test_environment_only_touches_fields_of_the_settings_being_built():
    from microaunet_cli.data import PrepareSettings

    env = {"MICROAUNET_TRAIN__EPOCHS": "3", "MICROAUNET_SIZE": "128", "MICROAUNET_HOME": "/x"}
    prep = load_settings(PrepareSettings, environ=env)
    assert prep.size == 128
    run = load_settings(RunSettings, environ=env)
    assert run.train.epochs == 3


def test_atomic_files_get_normal_permissions(tmp_path):
    import os
    import stat

    from microaunet_cli.fileio import write_text_atomic

    write_text_atomic(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~mask
