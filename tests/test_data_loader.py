"""open_prepared: memory-mapped splits, cheap checks on open, full hashes on verify(), k-fold views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_fixtures import make_kvasir

from microaunet_cli.data import PrepareSettings, SplitArrays, open_prepared, prepare_dataset
from microaunet_cli.errors import DataError


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    src = make_kvasir(root / "k", n=20)
    prepare_dataset(
        PrepareSettings(dataset="kvasir", src=src, out=root / "plain", split="random", size=32, workers=1)
    )
    prepare_dataset(
        PrepareSettings(
            dataset="kvasir",
            src=src,
            out=root / "kfold",
            split="kfold",
            folds=4,
            test_fraction=0.2,
            size=32,
            workers=1,
        )
    )
    return root


def test_attributes_and_memory_mapped_splits(prepared):
    data = open_prepared(prepared / "plain")
    assert (data.dataset, data.size, data.splits, data.test_splits, data.is_kfold) == (
        "kvasir",
        32,
        ["train", "val", "test"],
        ["test"],
        False,
    )
    assert len(data.mean) == 3 and all(0 < s < 1 for s in data.std)
    train = data.load("train")
    assert isinstance(train, SplitArrays) and len(train) == 14 and isinstance(train.images, np.memmap)
    assert train.images.shape == (14, 32, 32, 3) and train.masks.shape == (14, 32, 32)
    data.verify()


def test_to_tensors_are_uint8_nhwc(prepared):
    images, masks = open_prepared(prepared / "plain").load("test").to_tensors("cpu")
    assert images.dtype == torch.uint8 and images.shape == (4, 32, 32, 3) and masks.shape == (4, 32, 32)
    assert set(masks.unique().tolist()) <= {0, 1}


def test_unknown_split_lists_the_splits(prepared):
    with pytest.raises(DataError, match="no split 'tset'.*train, val, test"):
        open_prepared(prepared / "plain").load("tset")


def test_kfold_train_and_val_are_complementary(prepared):
    data = open_prepared(prepared / "kfold")
    assert data.is_kfold and data.splits == ["train", "val", "test"]
    total = data.manifest["splits"]["train"]["count"]
    for fold in range(4):
        train, val = data.load("train", fold=fold), data.load("val", fold=fold)
        assert len(train) + len(val) == total and not set(train.names) & set(val.names)
        assert len(train.images) == len(train.names)
    all_val = [n for k in range(4) for n in data.load("val", fold=k).names]
    assert sorted(all_val) == sorted(data._stored("train").names)


def test_kfold_normalization_leaves_out_the_held_out_fold(prepared):
    data = open_prepared(prepared / "kfold")
    for fold in range(4):
        pixels = np.asarray(data.load("train", fold=fold).images).reshape(-1, 3) / 255.0
        mean, std = data.normalization(fold)
        assert np.allclose(mean, pixels.mean(0), atol=1e-5) and np.allclose(std, pixels.std(0), atol=1e-5)
    assert data.normalization(0) != data.normalization(1)
    assert data.normalization(None) == (data.mean, data.std)


def test_fold_errors_say_to_set_data_fold(prepared):
    with pytest.raises(DataError, match="data.fold"):
        open_prepared(prepared / "kfold").load("train")
    with pytest.raises(DataError, match="out of range"):
        open_prepared(prepared / "kfold").load("val", fold=4)
    assert len(open_prepared(prepared / "kfold").load("test")) == 4  # the test side needs no fold
    with pytest.raises(DataError, match="not prepared with the kfold"):
        open_prepared(prepared / "plain").load("train", fold=0)


def test_missing_folder_names_the_fix(tmp_path):
    with pytest.raises(DataError, match=r"prepare-data --dataset synthetic --out .*synthetic"):
        open_prepared(tmp_path / "synthetic")


def test_damaged_array_is_caught(tmp_path):
    out = tmp_path / "d"
    prepare_dataset(PrepareSettings(out=out, synthetic_count=8, size=32, workers=1, test_fraction=0.25))
    path = out / "train" / "images.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, different content: only the hash sees it
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="sha256"):
        open_prepared(out).verify()
    path.write_bytes(bytes(data[:-100]))  # truncated: caught cheaply on open
    with pytest.raises(DataError, match="bytes.*prepare-data --dataset synthetic"):
        open_prepared(out)
