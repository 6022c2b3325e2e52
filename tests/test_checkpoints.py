"""The one loader of trained networks and its one normalisation policy (every stage reads through it)."""

from __future__ import annotations

import pytest
import torch
from helpers import NORMALIZATION, make_checkpoint

from microaunet_cli.checkpoints import load_checkpoint, load_trained
from microaunet_cli.errors import CheckpointError
from microaunet_cli.evaluation.evaluate import evaluate_checkpoint
from microaunet_cli.export import ExportSettings, export_checkpoint
from microaunet_cli.inference.runners import load_runner


def test_the_record_carries_what_the_checkpoint_recorded(tmp_path):
    trained = load_trained(make_checkpoint(tmp_path / "m.pt", model="microaunet", size=48, kind="student"))
    assert (trained.name, trained.size, trained.epoch, trained.dataset) == ("microaunet", 48, 0, "synthetic")
    assert (trained.mean, trained.std) == (NORMALIZATION["mean"], NORMALIZATION["std"])
    assert (trained.role, trained.training, trained.data_identity) == ("student", "distilled", None)
    assert not trained.network.training  # eval mode: BatchNorm uses its running statistics


def _without(tmp_path, key: str):
    path = make_checkpoint(tmp_path / "old.pt")
    ckpt = load_checkpoint(path)
    del ckpt[key]
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("key", ["normalization", "size"])
def test_a_checkpoint_without_its_input_spec_is_refused_by_every_stage(tmp_path, key):
    """No stage guesses statistics (ImageNet's, or a prepared folder's): guessed ones shift every
    probability without an error. Evaluate, export and predict all refuse, naming the file."""
    path = _without(tmp_path, key)
    message = f"checkpoint {path} does not record its input size and normalisation"
    stages = [
        lambda: load_trained(path),
        lambda: evaluate_checkpoint(path, device="cpu", out_dir=tmp_path / "ev"),
        lambda: export_checkpoint(ExportSettings(ckpt=path, format="torchscript")),
        lambda: load_runner(path, None, "cpu"),
    ]
    for stage in stages:
        with pytest.raises(CheckpointError, match=message):
            stage()
    assert not (tmp_path / "old.torchscript.pt").exists()
