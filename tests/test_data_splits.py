"""Split policies: seeded, disjoint, validation from the training side only, sequences never straddle."""

from __future__ import annotations

import pytest
from data_fixtures import make_cvc_png, make_kvasir, make_presplit

from microaunet_cli.data.layouts import detect_layout
from microaunet_cli.data.settings import PrepareSettings
from microaunet_cli.data.splits import read_split_list
from microaunet_cli.data.write_prepared import plan_splits
from microaunet_cli.errors import DataError


def plan(src, dataset="kvasir", **options):
    settings = PrepareSettings(dataset=dataset, src=src, **options)
    return plan_splits({dataset: detect_layout(src)}, settings)


def names(p, split):
    return [s.name for s in p.splits.get(split, [])]


def assert_disjoint(p):
    seen = [n for split in p.splits for n in names(p, split)]
    assert len(seen) == len(set(seen))


def test_random_is_seeded_disjoint_and_sized(tmp_path):
    src = make_kvasir(tmp_path, n=40)
    a = plan(src, split="random", test_fraction=0.25, val_fraction=0.1)
    assert {k: len(v) for k, v in a.splits.items()} == {"train": 27, "val": 3, "test": 10}
    assert_disjoint(a)
    assert names(plan(src, split="random", test_fraction=0.25, val_fraction=0.1), "test") == names(a, "test")
    assert names(plan(src, split="random", test_fraction=0.25, seed=7), "test") != names(a, "test")


def test_changing_val_fraction_never_moves_test_images(tmp_path):
    src = make_kvasir(tmp_path, n=30)
    a = plan(src, split="random", val_fraction=0.1)
    b = plan(src, split="random", val_fraction=0.3)
    assert names(a, "test") == names(b, "test")
    assert set(names(b, "val")) <= set(names(a, "train")) | set(names(a, "val"))


def test_sequence_keeps_each_video_on_one_side(tmp_path):
    src = make_cvc_png(tmp_path, n=30, per_sequence=3)
    p = plan(src, dataset="cvc", split="sequence", test_fraction=0.3, val_fraction=0.2)
    group_sides = {}
    for split, samples in p.splits.items():
        for s in samples:
            group_sides.setdefault(s.group, set()).add(split)
    assert all(len(sides) == 1 for sides in group_sides.values())
    assert {"train", "val", "test"} <= set(p.splits)


def test_sequence_needs_metadata(tmp_path):
    src = make_cvc_png(tmp_path, n=6, metadata=False)
    with pytest.raises(DataError, match="sequence split needs video sequences"):
        plan(src, dataset="cvc", split="sequence")


def test_predefined_uses_val_as_test_and_carves_validation_from_train(tmp_path):
    src = make_presplit(tmp_path, {"train": 10, "val": 4})
    p = plan(src, split="predefined", val_fraction=0.2)
    assert len(p.splits["test"]) == 4 and all(n.startswith("val") for n in names(p, "test"))
    assert len(p.splits["val"]) == 2 and all(n.startswith("train") for n in names(p, "val"))


def test_predefined_with_test_folder_keeps_all_three(tmp_path):
    src = make_presplit(tmp_path, {"train": 6, "val": 2, "test": 3})
    p = plan(src, split="predefined")
    assert {k: len(v) for k, v in p.splits.items()} == {"train": 6, "val": 2, "test": 3}


def test_predefined_needs_presplit_layout(tmp_path):
    with pytest.raises(DataError, match="pre-split layout"):
        plan(make_kvasir(tmp_path, n=4), split="predefined")


def test_kfold_balanced_contiguous_folds_and_held_out_test(tmp_path):
    src = make_kvasir(tmp_path, n=27)
    p = plan(src, split="kfold", folds=4, test_fraction=0.1)
    assert len(p.splits["test"]) == 3 and "val" not in p.splits
    assert p.folds == sorted(p.folds) and sorted(set(p.folds)) == [0, 1, 2, 3]
    assert max(p.folds.count(k) for k in range(4)) - min(p.folds.count(k) for k in range(4)) <= 1


def test_kfold_groups_cvc_sequences(tmp_path):
    src = make_cvc_png(tmp_path, n=24, per_sequence=4)
    p = plan(src, dataset="cvc", split="kfold", folds=3, test_fraction=0.0)
    fold_of_group = {}
    for s, f in zip(p.splits["train"], p.folds):
        assert fold_of_group.setdefault(s.group, f) == f


def test_pranet_lists_shipped_with_the_package():
    assert [
        len(read_split_list(f"{d}_{s}.txt")) for d in ("kvasir", "cvc_clinicdb") for s in ("train", "test")
    ] == [900, 100, 550, 62]


def test_pranet_on_partial_data_lists_missing_names(tmp_path):
    train, test = read_split_list("kvasir_train.txt")[:8], read_split_list("kvasir_test.txt")[:2]
    src = make_kvasir(tmp_path, names=train + test + ["not_in_any_list"])
    with pytest.raises(DataError, match="990 of the 1000 images.*missing.*--split random"):
        plan(src)
    p = plan(src, val_fraction=0.25, skip_bad=True)
    assert sorted(names(p, "test")) == sorted(test) and len(p.splits["val"]) == 2
    assert len(p.problems) == 990 and "not found" in p.problems[0][1]


def test_pranet_refused_for_synthetic(tmp_path):
    src = make_kvasir(tmp_path, n=4)
    settings = PrepareSettings(dataset="synthetic", src=src, split="pranet")
    with pytest.raises(DataError, match="use --split random"):
        plan_splits({"synthetic": detect_layout(src)}, settings)


def test_fractions_must_leave_training_data():
    with pytest.raises(ValueError, match="at least 10%"):
        PrepareSettings(val_fraction=0.5, test_fraction=0.45)
    with pytest.raises(ValueError, match="multiple of 32"):
        PrepareSettings(size=100)
