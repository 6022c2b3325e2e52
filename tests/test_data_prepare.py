"""prepare_dataset end to end on tiny folders: arrays, manifest, no-op re-runs, atomicity, bad input."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest
from data_fixtures import make_cvc_png, make_cvc_tif, make_kvasir, pair, write_image, write_mask

from microaunet_cli.data import PrepareSettings, open_prepared, prepare_dataset
from microaunet_cli.data import store as store_module
from microaunet_cli.data.synthetic import synthetic_pair
from microaunet_cli.errors import DataError


def prepare(out, **options):
    options = {"size": 32, "workers": 1, "split": "random", **options}
    return prepare_dataset(PrepareSettings(out=out, **options))


def test_arrays_and_manifest(tmp_path):
    result = prepare(tmp_path / "out", dataset="kvasir", src=make_kvasir(tmp_path / "k", n=20))
    m = result.manifest
    assert result.counts == {"train": 14, "val": 2, "test": 4} and not result.unchanged
    assert (m["dataset"], m["layout"], m["policy"], m["size"]) == (
        "kvasir",
        {"kvasir": "kvasir-download"},
        "random",
        32,
    )
    assert m["test_splits"] == ["test"] and len(m["mean"]) == 3 and m["tool_version"]
    for info in m["splits"].values():
        images = np.load(tmp_path / "out" / info["images"]["file"])
        masks = np.load(tmp_path / "out" / info["masks"]["file"])
        assert images.shape == (info["count"], 32, 32, 3) and images.dtype == np.uint8
        assert masks.shape == (info["count"], 32, 32) and set(np.unique(masks)) <= {0, 1}
        digest = hashlib.sha256((tmp_path / "out" / info["images"]["file"]).read_bytes()).hexdigest()
        assert digest == info["images"]["sha256"]
        assert len((tmp_path / "out" / info["names"]).read_text().splitlines()) == info["count"]


def test_pixels_are_rgb_and_masks_align(tmp_path):
    src = make_kvasir(tmp_path / "k", n=4, image_ext=".png", mask_ext=".png", sizes=((64, 64),))
    prepare(tmp_path / "out", dataset="kvasir", src=src, test_fraction=0, val_fraction=0)
    data = open_prepared(tmp_path / "out").load("train")
    for i, name in enumerate(data.names):
        image, mask = pair(int(name[3:]), 64, 64)
        expected = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA)
        assert np.array_equal(data.images[i], expected)
        assert (data.masks[i] != mask[::2, ::2]).mean() < 0.05
        assert data.images[i][data.masks[i] == 1, 0].mean() < data.images[i][data.masks[i] == 0, 0].mean()


def test_mean_std_are_train_statistics(tmp_path):
    result = prepare(tmp_path / "out", dataset="kvasir", src=make_kvasir(tmp_path / "k", n=12))
    train = np.load(tmp_path / "out" / "train" / "images.npy").reshape(-1, 3) / 255.0
    assert np.allclose(result.manifest["mean"], train.mean(0), atol=1e-5)
    assert np.allclose(result.manifest["std"], train.std(0), atol=1e-5)


def test_rerun_is_a_no_op_and_changes_redo(tmp_path, caplog):
    src = make_kvasir(tmp_path / "k", n=10)
    first = prepare(tmp_path / "out", dataset="kvasir", src=src)
    mtime = (tmp_path / "out" / "train" / "images.npy").stat().st_mtime_ns
    with caplog.at_level("INFO"):
        again = prepare(tmp_path / "out", dataset="kvasir", src=src, workers=2)
    assert again.unchanged and "nothing to do" in caplog.text
    assert (tmp_path / "out" / "train" / "images.npy").stat().st_mtime_ns == mtime
    assert not prepare(tmp_path / "out", dataset="kvasir", src=src, seed=1).unchanged
    write_image(src / "images" / "img000.jpg", pair(99)[0])  # an input changed
    assert not prepare(tmp_path / "out", dataset="kvasir", src=src, seed=1).unchanged
    assert (
        first.manifest["fingerprint"]
        != prepare(tmp_path / "out", dataset="kvasir", src=src).manifest["fingerprint"]
    )


def test_killed_run_leaves_no_complete_looking_output(tmp_path, monkeypatch):
    src = make_kvasir(tmp_path / "k", n=10)
    prepare(tmp_path / "out", dataset="kvasir", src=src)
    calls = {"n": 0}
    real = store_module._fill

    def dies_on_second_split(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, "_fill", dies_on_second_split)
    with pytest.raises(KeyboardInterrupt):
        prepare(tmp_path / "out", dataset="kvasir", src=src, seed=3)
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert not list((tmp_path / "out").rglob("*.partial"))
    with pytest.raises(DataError, match="manifest.json is missing.*prepare-data --dataset"):
        open_prepared(tmp_path / "out")


def test_parallel_workers_give_identical_arrays(tmp_path):
    src = make_kvasir(tmp_path / "k", n=12)
    a = prepare(tmp_path / "a", dataset="kvasir", src=src, workers=1)
    b = prepare(tmp_path / "b", dataset="kvasir", src=src, workers=2)
    assert a.manifest["splits"] == b.manifest["splits"]


def test_tif_and_png_layouts_give_the_same_pixels(tmp_path):
    png = make_cvc_png(tmp_path / "png", n=3, metadata=False)
    tif = make_cvc_tif(tmp_path / "tif", n=3)
    a = prepare(tmp_path / "a", dataset="cvc", src=png, test_fraction=0, val_fraction=0)
    b = prepare(tmp_path / "b", dataset="cvc", src=tif, test_fraction=0, val_fraction=0)
    assert b.manifest["layout"] == {"cvc": "cvc-tif"}
    assert (
        a.manifest["splits"]["train"]["images"]["sha256"] == b.manifest["splits"]["train"]["images"]["sha256"]
    )
    assert (
        a.manifest["splits"]["train"]["masks"]["sha256"] == b.manifest["splits"]["train"]["masks"]["sha256"]
    )


def test_polyp_mix_keeps_test_sets_apart(tmp_path):
    make_kvasir(tmp_path / "src" / "Kvasir-SEG", n=20)
    make_cvc_png(tmp_path / "src" / "CVC-ClinicDB", n=10)
    result = prepare(tmp_path / "out", dataset="polyp-mix", src=tmp_path / "src", test_fraction=0.2)
    assert set(result.counts) == {"train", "val", "test_kvasir", "test_cvc"}
    assert result.counts["test_kvasir"] == 4 and result.counts["test_cvc"] == 2
    names = (tmp_path / "out" / "test_cvc" / "names.txt").read_text().split()
    assert all(n.startswith("cvc/") for n in names)
    assert open_prepared(tmp_path / "out").test_splits == ["test_kvasir", "test_cvc"]


def test_synthetic_is_deterministic_and_generated_beside_output(tmp_path):
    a = prepare(tmp_path / "a", dataset="synthetic", synthetic_count=12)
    b = prepare(tmp_path / "b", dataset="synthetic", synthetic_count=12)
    assert (tmp_path / "a" / "raw" / "images").is_dir()
    assert (
        a.manifest["splits"]["train"]["images"]["sha256"] == b.manifest["splits"]["train"]["images"]["sha256"]
    )
    assert prepare(tmp_path / "a", dataset="synthetic", synthetic_count=12).unchanged


def test_synthetic_never_overwrites_a_real_folder(tmp_path):
    src = make_kvasir(tmp_path / "Kvasir-SEG", n=3)
    with pytest.raises(DataError, match="did not write"):
        prepare(tmp_path / "out", dataset="synthetic", src=src, synthetic_count=8)
    assert len(list((src / "images").iterdir())) == 3


def test_synthetic_pairs_look_like_polyps():
    shapes, empty = set(), 0
    for i in range(40):
        image, mask = synthetic_pair(0, i)
        shapes.add(image.shape)
        if not mask.any():
            empty += 1
            continue
        # Polyps are redder than the mucosa: the colour alone separates them.
        ratio = image[..., 0].astype(float) / (image[..., 1] + 1.0)
        assert ratio[mask == 1].mean() > ratio[mask == 0].mean() + 0.5
    assert len(shapes) >= 3 and 1 <= empty <= 15


def test_opaque_rgba_images_are_prepared_as_their_rgb(tmp_path):
    """Photographs exported as RGBA PNGs with a fully opaque alpha give the same arrays as RGB PNGs."""
    rgb = make_kvasir(tmp_path / "rgb", n=4, image_ext=".png", mask_ext=".png")
    rgba = make_kvasir(tmp_path / "rgba", n=4, image_ext=".png", mask_ext=".png")
    for path in (rgba / "images").iterdir():
        bgr = cv2.imread(str(path))
        cv2.imwrite(str(path), np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)]))
    assert cv2.imread(str(rgba / "images" / "img000.png"), cv2.IMREAD_UNCHANGED).shape[2] == 4
    options = {"dataset": "kvasir", "test_fraction": 0, "val_fraction": 0}
    prepare(tmp_path / "a", src=rgb, **options)
    prepare(tmp_path / "b", src=rgba, **options)
    a, b = open_prepared(tmp_path / "a").load("train"), open_prepared(tmp_path / "b").load("train")
    assert np.array_equal(a.images, b.images) and np.array_equal(a.masks, b.masks)


# ---- bad input -------------------------------------------------------------------------------------


def broken_kvasir(tmp_path, breakage):
    src = make_kvasir(tmp_path / "k", n=10)
    target = breakage(src)
    return src, target


def _truncate(src):
    path = src / "images" / "img003.jpg"
    path.write_bytes(path.read_bytes()[:200])
    return "img003.jpg"


def _size_mismatch(src):
    write_mask(src / "masks" / "img004.jpg", np.zeros((10, 10), np.uint8))
    return "img004.jpg"


def _grey(src):
    cv2.imwrite(str(src / "images" / "img005.jpg"), np.full((40, 48), 90, np.uint8))
    return "img005.jpg"


def _transparent(src):
    (src / "images" / "img006.jpg").unlink()
    cv2.imwrite(str(src / "images" / "img006.png"), np.zeros((40, 48, 4), np.uint8))  # alpha 0 everywhere
    return "img006.png"


def _not_binary(src):
    cv2.imwrite(str(src / "masks" / "img007.jpg"), cv2.imread(str(src / "images" / "img007.jpg"))[..., 1])
    return "img007.jpg"


def _unpaired_image(src):
    (src / "masks" / "img008.jpg").unlink()
    return "img008.jpg"


def _unpaired_mask(src):
    (src / "images" / "img009.jpg").unlink()
    return "img009.jpg"


BREAKAGES = [_truncate, _size_mismatch, _grey, _transparent, _not_binary, _unpaired_image, _unpaired_mask]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.__name__.strip("_") for b in BREAKAGES])
def test_bad_file_is_named_and_skippable(tmp_path, breakage):
    src, bad_name = broken_kvasir(tmp_path, breakage)
    with pytest.raises(DataError, match=rf"{bad_name}[\s\S]*--skip-bad"):
        prepare(tmp_path / "out", dataset="kvasir", src=src)
    assert not (tmp_path / "out" / "manifest.json").exists()
    result = prepare(tmp_path / "out", dataset="kvasir", src=src, skip_bad=True)
    assert sum(result.counts.values()) == 9
    assert [bad_name in s["file"] for s in result.skipped] == [True]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["skipped"] == result.skipped


def test_nothing_usable_is_an_error(tmp_path):
    src = make_kvasir(tmp_path / "k", n=3)
    for path in (src / "images").iterdir():
        path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="nothing usable"):
        prepare(tmp_path / "out", dataset="kvasir", src=src, skip_bad=True, test_fraction=0, val_fraction=0)


def test_wrong_dataset_for_folder(tmp_path):
    src = make_cvc_png(tmp_path / "cvc", n=3)
    with pytest.raises(DataError, match="--dataset cvc"):
        prepare(tmp_path / "out", dataset="kvasir", src=src)
    with pytest.raises(DataError, match="is the data set folder itself"):
        prepare(src, dataset="cvc", src=src)
    with pytest.raises(DataError, match="--src is required"):
        prepare(tmp_path / "out", dataset="kvasir")
