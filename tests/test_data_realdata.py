"""Both real data sets prepared in full, as users download them (../shared/data; skipped where absent)."""

from __future__ import annotations

import numpy as np
import pytest

from microaunet_cli.data import PrepareSettings, open_prepared, prepare_dataset
from microaunet_cli.data.decode import decode_pair
from microaunet_cli.data.io import read_image, read_mask

# 64 px keeps the whole test near a minute on two cores; the decoding work is the same at any size.
SIZE = 64


@pytest.mark.realdata
def test_real_data_sets_prepare_in_full(shared_data, tmp_path):
    kvasir = prepare_dataset(
        PrepareSettings(dataset="kvasir", src=shared_data / "Kvasir-SEG", out=tmp_path / "kvasir", size=SIZE)
    )
    assert kvasir.counts == {"train": 810, "val": 90, "test": 100} and kvasir.skipped == []
    assert kvasir.manifest["layout"] == {"kvasir": "kvasir-download"}

    cvc = prepare_dataset(
        PrepareSettings(dataset="cvc", src=shared_data / "CVC-ClinicDB", out=tmp_path / "cvc", size=SIZE)
    )
    assert cvc.counts == {"train": 495, "val": 55, "test": 62} and cvc.manifest["layout"] == {
        "cvc": "cvc-png"
    }

    mix = prepare_dataset(
        PrepareSettings(dataset="polyp-mix", src=shared_data, out=tmp_path / "mix", size=SIZE)
    )
    assert mix.counts["train"] + mix.counts["val"] == 1450
    assert (mix.counts["test_kvasir"], mix.counts["test_cvc"]) == (100, 62)
    data = open_prepared(tmp_path / "mix")
    assert data.test_splits == ["test_kvasir", "test_cvc"]
    # Same images, same resize: the mix's CVC test set equals the CVC-only one.
    assert np.array_equal(data.load("test_cvc").images, open_prepared(tmp_path / "cvc").load("test").images)


@pytest.mark.realdata
def test_cvc_sequence_split_keeps_videos_apart(shared_data, tmp_path):
    result = prepare_dataset(
        PrepareSettings(
            dataset="cvc", src=shared_data / "CVC-ClinicDB", split="sequence", out=tmp_path / "seq", size=32
        )
    )
    sequences = {}
    for line in (shared_data / "CVC-ClinicDB" / "metadata.csv").read_text().splitlines()[1:]:
        frame, sequence = line.split(",")[:2]
        sequences[frame] = sequence
    sides: dict[str, set[str]] = {}
    for split in result.counts:
        for name in (tmp_path / "seq" / split / "names.txt").read_text().split():
            sides.setdefault(sequences[name], set()).add(split)
    assert len(sides) == 29 and all(len(s) == 1 for s in sides.values())


@pytest.mark.realdata
def test_tif_release_gives_the_png_pixels(shared_data):
    for frame in (1, 2, 3):
        tif = shared_data / "CVC-ClinicDB-TIF-sample"
        png = shared_data / "CVC-ClinicDB" / "PNG"
        assert np.array_equal(
            read_image(tif / "Original" / f"{frame}.tif"), read_image(png / "Original" / f"{frame}.png")
        )
        assert np.array_equal(
            read_mask(tif / "Ground Truth" / f"{frame}.tif"), read_mask(png / "Ground Truth" / f"{frame}.png")
        )


@pytest.mark.realdata
def test_tif_sample_prepares_to_the_png_arrays(shared_data, tmp_path):
    result = prepare_dataset(
        PrepareSettings(
            dataset="cvc",
            src=shared_data / "CVC-ClinicDB-TIF-sample",
            out=tmp_path / "tif",
            split="random",
            test_fraction=0,
            val_fraction=0,
            size=SIZE,
        )
    )
    assert result.manifest["layout"] == {"cvc": "cvc-tif"}
    train = open_prepared(tmp_path / "tif").load("train")
    png = shared_data / "CVC-ClinicDB" / "PNG"
    for i, name in enumerate(train.names):
        expected = decode_pair(png / "Original" / f"{name}.png", png / "Ground Truth" / f"{name}.png", SIZE)
        assert np.array_equal(train.images[i], expected.image) and np.array_equal(
            train.masks[i], expected.mask
        )
        assert train.images[i].std(axis=2).mean() > 1  # colour, not three copies of one grey channel
