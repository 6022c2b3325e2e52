"""The trained weights shipped in the package: files that match their cards, reached by name from
every command and the API, and the card's test scores reproduced on the real data."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import microaunet_cli
from microaunet_cli.checkpoints import load_checkpoint, load_trained
from microaunet_cli.cli.app import app
from microaunet_cli.data import PrepareSettings, prepare_dataset
from microaunet_cli.errors import CheckpointError
from microaunet_cli.evaluation.evaluate import evaluate_checkpoint
from microaunet_cli.weights import card_path, sha256, shipped_names, shipped_path

SHIPPED = ("malunet-polyp", "malunet-polyp-full", "microaunet_rt-polyp", "microaunet_rt-polyp-full")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _card_scores(name: str) -> dict[str, tuple[float, float]]:
    """(mDice, mIoU) per test set, read from the card's table (not from the checkpoint)."""
    rows = re.findall(
        r"^\| (test_\w+) \| \d+ \| ([\d.]+) \| ([\d.]+) \|", card_path(name).read_text(), re.MULTILINE
    )
    return {split: (float(d), float(i)) for split, d, i in rows}


def test_the_teacher_and_the_default_student_ship():
    assert set(SHIPPED) <= set(shipped_names())
    assert load_trained("microaunet_rt-polyp").name == "microaunet_rt"
    assert load_trained("malunet-polyp").role == "teacher"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_matches_its_card(name):
    path = shipped_path(name)
    text = card_path(name).read_text()
    assert path.stat().st_size <= 1_000_000
    assert re.search(rf"SHA-256 of `{re.escape(name)}\.pt`: `{sha256(path)}`", text)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values only
    assert "optimizer" not in ckpt and "train_model" not in ckpt
    assert set(_card_scores(name)) == {"test_kvasir", "test_cvc"}
    for split, (mdice, miou) in _card_scores(name).items():
        assert ckpt["test"][split]["mdice"] == pytest.approx(mdice, abs=5e-5)
        assert ckpt["test"][split]["miou"] == pytest.approx(miou, abs=5e-5)
    for needed in ("not a medical device", "research", "Commit: `", "```bash"):
        assert needed in text, needed


def test_an_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint("microaunet-polyp")
    assert all(name in str(err.value) for name in SHIPPED)
    result = CliRunner().invoke(app, ["benchmark", "--ckpt", "no-such-model", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "microaunet_rt-polyp" in result.output and "Traceback" not in result.output


def test_a_near_miss_of_a_shipped_name_says_which_one_was_meant(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for given in ("MicroAUNet_RT-polyp-full", "microaunet_rt-polyp-full.pt", "malunet-polip"):
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(given)
        meant = "malunet-polyp" if given.startswith("malunet") else "microaunet_rt-polyp-full"
        assert f"did you mean the shipped weights '{meant}'" in str(err.value)
        assert all(name in str(err.value) for name in SHIPPED)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint("runs/microaunet_rt-polyp-full.pt")  # a path of the user's own: no guess
    assert "did you mean" not in str(err.value) and "does not exist" in str(err.value)


def test_a_folder_bearing_a_shipped_name_is_never_answered_with_the_shipped_weights(tmp_path, monkeypatch):
    """A run folder named like shipped weights, given as --ckpt, is the user's folder: the error says
    to pass its .pt file and where the shipped file is, rather than running other weights silently."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "microaunet_rt-polyp" / "checkpoints").mkdir(parents=True)
    for given in ("microaunet_rt-polyp", Path("microaunet_rt-polyp"), "./microaunet_rt-polyp"):
        with pytest.raises(CheckpointError) as err:
            load_trained(given)
        assert "is a folder" in str(err.value)
        assert str(shipped_path("microaunet_rt-polyp")) in str(err.value)
    cv2.imwrite(str(tmp_path / "a.png"), np.full((20, 30, 3), 128, np.uint8))
    result = CliRunner().invoke(
        app, ["predict", "--ckpt", "microaunet_rt-polyp", "--input", "a.png", "--out", "o"]
    )
    assert result.exit_code == 2 and "is a folder" in result.output, result.output
    assert load_trained("malunet-polyp").role == "teacher"  # other names still resolve


def test_models_lists_the_shipped_weights():
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for name in SHIPPED:
        assert name in result.output


@pytest.mark.realdata
def test_predict_by_name_with_no_run_folder(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/ or data/ anywhere here
    image = min((shared_data / "Kvasir-SEG" / "images").glob("*.jpg"))
    h, w = cv2.imread(str(image)).shape[:2]
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "--ckpt",
            "microaunet_rt-polyp",
            "--input",
            str(image),
            "--out",
            "out",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    mask = cv2.imread(str(tmp_path / "out" / "masks" / f"{image.stem}.png"), cv2.IMREAD_GRAYSCALE)
    assert mask.shape == (h, w) and 0 < (mask > 0).mean() < 0.9  # a polyp found, not everything
    seg = microaunet_cli.load("microaunet_rt-polyp", device="cpu")
    rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(seg.predict(rgb) > 0, mask > 0)


@pytest.fixture(scope="module")
def polyp_mix(tmp_path_factory) -> dict[int, Path]:
    """polyp-mix prepared at each shipped input size (the real data; about 10 s a size)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    out = {}
    for size in sorted({load_checkpoint(shipped_path(n))["size"] for n in SHIPPED}):
        out[size] = tmp_path_factory.mktemp("mix") / f"mix-{size}"
        prepare_dataset(PrepareSettings(dataset="polyp-mix", src=SHARED_DATA, out=out[size], size=size))
    return out


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_card_scores_reproduce_on_the_real_data(name, polyp_mix, tmp_path):
    size = load_checkpoint(shipped_path(name))["size"]
    summary = evaluate_checkpoint(
        name, data_dir=polyp_mix[size], out_dir=tmp_path / name, device="cpu", worst=0
    )
    assert summary.splits.keys() == _card_scores(name).keys()
    for split, (mdice, miou) in _card_scores(name).items():
        assert summary.splits[split]["resolution"] == "original"
        assert summary.splits[split]["per_image"]["mdice"] == pytest.approx(mdice, abs=1e-3)
        assert summary.splits[split]["per_image"]["miou"] == pytest.approx(miou, abs=1e-3)
