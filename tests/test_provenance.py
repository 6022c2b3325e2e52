"""Data provenance: checkpoints record their data identity; distill and evaluate refuse data that may
overlap; training refuses a damaged array."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from microaunet_cli.checkpoints import load_checkpoint
from microaunet_cli.config import RunSettings, load_settings
from microaunet_cli.data import PrepareSettings, open_prepared, prepare_dataset
from microaunet_cli.errors import CheckpointError, DataError
from microaunet_cli.evaluation.evaluate import evaluate_checkpoint
from microaunet_cli.training.runner import distill, train_teacher

SIZE = 32


def _prepare(out: Path, **options) -> Path:
    settings = {
        "dataset": "synthetic",
        "out": out,
        "size": SIZE,
        "synthetic_count": 16,
        "workers": 1,
        **options,
    }
    prepare_dataset(PrepareSettings(**settings))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _prepare(tmp_path_factory.mktemp("data") / "synthetic")


def _settings(data: Path, runs: Path, *sets: str, model: str = "malunet") -> RunSettings:
    base = [
        f"data.prepared_dir={data}",
        f"output.runs_dir={runs}",
        f"model.name={model}",
        "train.epochs=1",
        "train.batch_size=8",
        "output.quiet=true",
        "augment.enabled=false",
    ]
    return load_settings(RunSettings, sets=[*base, *sets], environ={})


@pytest.fixture(scope="module")
def teacher(data, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    train_teacher(_settings(data, runs))
    return runs / "synthetic-malunet" / "checkpoints" / "best.pt"


def _teacher_with(teacher: Path, tmp_path: Path, **identity) -> Path:
    """A copy of the teacher whose recorded identity differs in the given fields (None: no identity)."""
    ckpt = load_checkpoint(teacher)
    if identity.pop("legacy", False):
        del ckpt["data_identity"]
    else:
        ckpt["data_identity"] = {**ckpt["data_identity"], **identity}
    path = tmp_path / "teacher.pt"
    torch.save(ckpt, path)
    return path


def test_identity_is_recorded_and_stable_across_preparations(data, teacher, tmp_path):
    ckpt = load_checkpoint(teacher)
    identity = ckpt["data_identity"]
    assert {k: identity[k] for k in ("dataset", "policy", "split_seed", "size", "fold")} == {
        "dataset": "synthetic",
        "policy": "random",
        "split_seed": 42,
        "size": SIZE,
        "fold": None,
    }
    again = _prepare(tmp_path / "again")  # the same data prepared again, elsewhere, later
    assert open_prepared(again).identity() == identity
    other_seed = open_prepared(_prepare(tmp_path / "seed7", seed=7)).identity()
    assert other_seed["split_seed"] == 7 and other_seed["digest"] != identity["digest"]
    assert json_safe(identity)


def json_safe(identity: dict) -> bool:
    import json

    return json.loads(json.dumps(identity)) == identity


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("policy", "pranet", "split policy"),
        ("split_seed", 7, "seed of the split"),
        ("dataset", "kvasir", "data set"),
        ("size", 64, "image size"),
        ("fold", 1, "k-fold validation fold"),
        ("digest", "0" * 64, "content digest"),
    ],
)
def test_distill_refuses_a_teacher_trained_on_other_data(field, value, named, data, teacher, tmp_path):
    path = _teacher_with(teacher, tmp_path, **{field: value})
    with pytest.raises(CheckpointError, match=f"{named}.*--allow-teacher-mismatch"):
        distill(_settings(data, tmp_path, f"distill.teacher={path}", model="microaunet_fast"))


def test_allow_teacher_mismatch_is_recorded(data, teacher, tmp_path):
    path = _teacher_with(teacher, tmp_path, split_seed=7)
    summary = distill(
        _settings(
            data,
            tmp_path,
            f"distill.teacher={path}",
            "distill.allow_teacher_mismatch=true",
            model="microaunet_fast",
        )
    )
    assert summary.teacher["data"]["status"].startswith("mismatch allowed")
    assert summary.teacher["data"]["fields"] == ["split_seed"]
    student = load_checkpoint(Path(summary.checkpoint_best))
    assert student["teacher"]["data"]["fields"] == ["split_seed"]


def test_legacy_teacher_without_identity_is_used_with_a_warning(data, teacher, tmp_path, caplog):
    path = _teacher_with(teacher, tmp_path, legacy=True)
    with caplog.at_level(logging.WARNING):
        summary = distill(_settings(data, tmp_path, f"distill.teacher={path}", model="microaunet_fast"))
    assert summary.status == "completed"
    assert summary.teacher["data"]["status"].startswith("unchecked")
    assert "records no data identity" in caplog.text


def test_kfold_teacher_of_another_fold_is_refused(tmp_path):
    folds = _prepare(tmp_path / "kfold", split="kfold", folds=4)
    train_teacher(_settings(folds, tmp_path, "data.fold=0"))
    teacher = tmp_path / "synthetic-malunet" / "checkpoints" / "best.pt"
    with pytest.raises(CheckpointError, match="fold.*1 here"):
        distill(
            _settings(folds, tmp_path, "data.fold=1", f"distill.teacher={teacher}", model="microaunet_fast")
        )


def test_damaged_array_stops_training_naming_the_file(tmp_path):
    data = _prepare(tmp_path / "damaged")
    target = data / "train" / "images.npy"
    raw = bytearray(target.read_bytes())
    raw[-100] ^= 0xFF  # same size, same header: only the full hash sees it
    target.write_bytes(bytes(raw))
    open_prepared(data)  # the cheap check on open passes
    with pytest.raises(DataError, match=r"train/images.npy: content differs.*--force"):
        train_teacher(_settings(data, tmp_path / "runs"))


def test_damaged_original_masks_are_caught_too(tmp_path):
    data = _prepare(tmp_path / "damaged")
    target = data / "test" / "original_masks.npy"
    raw = bytearray(target.read_bytes())
    raw[-10] ^= 0xFF
    target.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="original_masks.npy: content differs"):
        open_prepared(data).verify()


def test_evaluate_refuses_a_folder_split_another_way(teacher, tmp_path):
    other = _prepare(tmp_path / "seed7", seed=7)
    with pytest.raises(DataError, match="seed of the split.*may be training images"):
        evaluate_checkpoint(teacher, data_dir=other, device="cpu", out_dir=tmp_path / "o")
    # k-fold keeps the same held-out test images and divides the rest into folds: the test split may be
    # scored, its validation block (a fold, images the checkpoint trained on) may not.
    by_policy = _prepare(tmp_path / "kfold", split="kfold", folds=4)
    summary = evaluate_checkpoint(teacher, data_dir=by_policy, device="cpu", out_dir=tmp_path / "o", worst=0)
    assert summary.data_check == "same test images, the rest divided otherwise (policy)"
    with pytest.raises(DataError, match="split policy"):
        evaluate_checkpoint(teacher, split="val", data_dir=by_policy, device="cpu", out_dir=tmp_path / "o")


def test_evaluate_accepts_another_division_when_the_test_split_is_the_checkpoints_own(
    data, teacher, tmp_path
):
    """PraNet's test lists are fixed while its seed divides the rest: scoring is safe when the folder's
    test split holds exactly the checkpoint's test images, and refused as soon as one differs."""
    own = load_checkpoint(teacher)["data_identity"]["split_membership"]
    divided_otherwise = {"split_seed": 7, "membership": "another division"}
    same_test = _teacher_with(teacher, tmp_path, **divided_otherwise)
    summary = evaluate_checkpoint(same_test, data_dir=data, device="cpu", out_dir=tmp_path / "o", worst=0)
    assert summary.data_check == "same test images, the rest divided otherwise (split_seed)"
    assert summary.splits["test"]["n_images"] > 0

    (tmp_path / "other").mkdir()
    other_test = _teacher_with(
        teacher, tmp_path / "other", **divided_otherwise, split_membership={**own, "test": "other images"}
    )
    with pytest.raises(DataError, match="seed of the split.*may be training images"):
        evaluate_checkpoint(other_test, data_dir=data, device="cpu", out_dir=tmp_path / "o2")
    # Recorded before per-split membership: no proof, refused as before.
    (tmp_path / "old").mkdir()
    old = _teacher_with(teacher, tmp_path / "old", **divided_otherwise, split_membership=None)
    with pytest.raises(DataError, match="seed of the split"):
        evaluate_checkpoint(old, data_dir=data, device="cpu", out_dir=tmp_path / "o3")
    # Only the splits scored count: val differs from the checkpoint's, and scoring val is refused.
    val_differs = _teacher_with(teacher, tmp_path, **divided_otherwise, split_membership={**own, "val": "x"})
    assert evaluate_checkpoint(val_differs, data_dir=data, device="cpu", out_dir=tmp_path / "o4", worst=0)
    with pytest.raises(DataError, match="may be training images"):
        evaluate_checkpoint(val_differs, split="val", data_dir=data, device="cpu", out_dir=tmp_path / "o5")


def test_evaluate_at_another_size_warns_that_it_resizes(teacher, tmp_path, caplog):
    larger = _prepare(tmp_path / "s64", size=64)
    with caplog.at_level(logging.WARNING):
        summary = evaluate_checkpoint(teacher, data_dir=larger, device="cpu", out_dir=tmp_path / "o", worst=1)
    assert "prepared at 64 px, the checkpoint trained at 32 px" in caplog.text
    assert summary.size == SIZE and summary.data_check.startswith("same split, other size")
    assert summary.splits["test"]["resolution"] == "original"


def test_evaluate_same_data_prepared_again_is_accepted(teacher, tmp_path, caplog):
    again = _prepare(tmp_path / "again")
    with caplog.at_level(logging.WARNING):
        summary = evaluate_checkpoint(teacher, data_dir=again, device="cpu", out_dir=tmp_path / "o", worst=0)
    assert summary.data_check == "same data as training"
    assert "data identity" not in caplog.text
