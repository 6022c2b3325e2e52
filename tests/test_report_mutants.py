"""How ``report`` pairs runs (evaluation/report.py): which runs form a group, which reference each group
is compared with, which images and seeds line up, and the per-group means, all on runs built here with
scores chosen so that every pairing mistake changes a number. The interval itself is stood in for, so
these tests see exactly the matrices it is given."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from microaunet_cli.errors import DataError
from microaunet_cli.evaluation import report
from microaunet_cli.evaluation.report import (
    RunScores,
    default_reference,
    group_table,
    paired_differences,
    parse_reference,
)


def _run(model, kind, seed, dice: dict[str, float], data="kvasir 256", teacher=None, split="test"):
    summary = {
        "resolution": "original",
        "n_images": len(dice),
        "per_image": {"mdice": statistics.fmean(dice.values()), "miou": 0.5, "mae": 0.1},
        "pooled": {"dice": 0.7, "iou": 0.6, "accuracy": 0.9, "sensitivity": 0.8, "specificity": 0.95},
    }
    cases = {split: {n: {"dice": d, "iou": d / 2} for n, d in dice.items()}}
    return RunScores(
        folder=Path(f"runs/{model}-{kind}-s{seed}"),
        model=model,
        kind=kind,
        seed=seed,
        teacher_model=teacher,
        splits={split: summary},
        cases=cases,
        source=f"runs/{model}-{kind}-s{seed}/eval/summary.json",
        data=data,
    )


@pytest.fixture
def captured(monkeypatch):
    calls = []

    class Interval:
        def __init__(self, ours, theirs, paired):
            self.ours, self.theirs, self.paired = ours, theirs, paired

        def as_dict(self):
            return {"ours": self.ours.tolist(), "theirs": self.theirs.tolist(), "paired": self.paired}

    def fake(ours, theirs, paired):
        calls.append((ours, theirs, paired))
        return Interval(ours, theirs, paired)

    monkeypatch.setattr(report, "difference_interval", fake)
    return calls


def test_students_are_paired_with_teachers_seed_by_seed_and_image_by_image(captured):
    runs = [
        # given out of seed order; the student scored one extra image ("z")
        _run("student", "distilled", 2, {"b": 0.2, "a": 0.1, "z": 0.9}, teacher="teacher"),
        _run("student", "distilled", 1, {"a": 0.3, "b": 0.4, "z": 0.8}, teacher="teacher"),
        _run("teacher", "supervised", 1, {"a": 0.5, "b": 0.6}),
        _run("teacher", "supervised", 2, {"b": 0.8, "a": 0.7}),
    ]
    rows = paired_differences(runs, ("teacher", "supervised"))
    assert len(rows) == 1
    row = rows[0]
    assert (row["dataset"], row["model"], row["kind"], row["split"]) == (
        "kvasir 256",
        "student",
        "distilled",
        "test",
    )
    assert row["reference"] == "teacher (supervised)"
    assert (row["runs"], row["reference_runs"], row["n_images"], row["runs_paired_by_seed"]) == (
        2,
        2,
        2,
        True,
    )
    # rows in seed order (1, 2), columns the shared images in name order (a, b)
    assert row["dice"]["ours"] == [[0.3, 0.4], [0.1, 0.2]]
    assert row["dice"]["theirs"] == [[0.5, 0.6], [0.7, 0.8]]
    assert row["iou"]["ours"] == [[0.15, 0.2], [0.05, 0.1]]
    assert row["dice"]["label"] == "mDice" and row["iou"]["label"] == "mIoU"
    assert row["note"] is None


@pytest.mark.parametrize(
    "student_seeds, teacher_seeds, paired",
    [((1, 2), (2, 1), True), ((1, 2), (1, 3), False), ((1, 1), (1, 1), False), ((1, None), (1, None), False)],
)
def test_runs_are_paired_only_when_both_groups_ran_the_same_seeds_once(
    captured, student_seeds, teacher_seeds, paired
):
    runs = [_run("student", "distilled", s, {"a": 0.1}, teacher="teacher") for s in student_seeds]
    runs += [_run("teacher", "supervised", s, {"a": 0.2}) for s in teacher_seeds]
    (row,) = paired_differences(runs, ("teacher", "supervised"))
    assert row["runs_paired_by_seed"] is paired
    assert captured[-1][2] is paired


def test_runs_without_a_seed_sort_last():
    runs = [
        _run("s", "distilled", None, {"a": 0.9}),
        _run("s", "distilled", 3, {"a": 0.1}),
        _run("s", "distilled", 0, {"a": 0.5}),
    ]
    assert report._score_matrix(runs, "test", "dice", ["a"]).tolist() == [[0.5], [0.1], [0.9]]


def test_each_data_set_is_compared_with_its_own_reference(captured):
    runs = [
        _run("student", "distilled", 1, {"a": 0.1}, data="kvasir 256", teacher="teacher"),
        _run("teacher", "supervised", 1, {"a": 0.2}, data="kvasir 256"),
        _run("student", "distilled", 1, {"a": 0.3}, data="cvc 256", teacher="teacher"),
    ]
    rows = paired_differences(runs, ("teacher", "supervised"))
    by_data = {r["dataset"]: r for r in rows}
    assert by_data["kvasir 256"]["dice"]["theirs"] == [[0.2]]
    assert by_data["cvc 256"]["note"] == "no teacher:supervised runs on cvc 256"
    assert by_data["cvc 256"]["split"] == "—"


def test_notes_for_what_cannot_be_paired(captured):
    student = _run("student", "distilled", 1, {"a": 0.1}, teacher="teacher")
    other_split = _run("teacher", "supervised", 1, {"a": 0.2}, split="val")
    rows = paired_differences([student, other_split], ("teacher", "supervised"))
    assert {r["split"]: r["note"] for r in rows} == {
        "val": "the split was scored for one group only",
        "test": "the split was scored for one group only",
    }
    disjoint = _run("teacher", "supervised", 1, {"q": 0.2})
    (row,) = paired_differences([student, disjoint], ("teacher", "supervised"))
    assert row["note"] == "no test image scored by every run (other test sets?)" and row["split"] == "test"
    unscored = _run("teacher", "supervised", 1, {"a": 0.2})
    unscored.cases = {}
    (row,) = paired_differences([student, unscored], ("teacher", "supervised"))
    assert row["note"].startswith(f"no per-image scores in {unscored.folder}: run `microaunet evaluate")
    assert row["split"] == "test" and row["model"] == "student"
    also_unscored = _run("student", "distilled", 2, {"a": 0.1}, teacher="teacher")
    also_unscored.cases = {}
    (row,) = paired_differences([student, also_unscored, unscored], ("teacher", "supervised"))
    assert row["note"].startswith(f"no per-image scores in {also_unscored.folder}, {unscored.folder}: run")
    assert not captured


def test_a_data_set_without_the_reference_does_not_stop_the_others(captured):
    runs = [
        _run("student", "distilled", 1, {"a": 0.1}, data="cvc 256", teacher="teacher"),
        _run("student", "distilled", 1, {"a": 0.3}, teacher="teacher"),
        _run("teacher", "supervised", 1, {"a": 0.5}),
    ]
    rows = paired_differences(runs, ("teacher", "supervised"))
    assert [(r["dataset"], r["note"]) for r in rows] == [
        ("cvc 256", "no teacher:supervised runs on cvc 256"),
        ("kvasir 256", None),
    ]


def test_runs_are_taken_in_seed_order_from_seed_zero():
    runs = [_run("s", "distilled", 1, {"a": 0.1}), _run("s", "distilled", 0, {"a": 0.5})]
    assert [m.seed for m in report._by_seed(runs)] == [0, 1]


def test_a_group_that_mixes_resolutions_is_named_and_labelled(caplog):
    runs = [_run("s", "distilled", seed, {"a": 0.5}) for seed in (0, 1, 2)]
    runs[1].splits["test"]["resolution"] = "resized 128x128"
    del runs[2].splits["test"]["resolution"]
    with caplog.at_level("WARNING"):
        (row,) = group_table(runs)
    assert row["resolution"] == "not recorded / original / resized 128x128"
    (message,) = (r.getMessage() for r in caplog.records)
    assert message == (
        "s distilled on kvasir 256 test mixes resolutions (not recorded, original, resized 128x128): "
        "their mean is not meaningful"
    )
    caplog.clear()
    with caplog.at_level("WARNING"):
        (row,) = group_table(runs[:2])  # two resolutions are already a mix
    assert row["resolution"] == "original / resized 128x128" and len(caplog.records) == 1
    caplog.clear()
    with caplog.at_level("WARNING"):
        (row,) = group_table(runs[:1])
    assert row["resolution"] == "original" and not caplog.records


def test_an_absent_reference_is_refused_with_the_choices():
    runs = [_run("student", "distilled", 1, {"a": 0.1}), _run("teacher", "supervised", 1, {"a": 0.2})]
    with pytest.raises(
        DataError,
        match=r"--reference other:supervised: no such runs among those given; "
        r"choose one of student:distilled, teacher:supervised",
    ):
        paired_differences(runs, ("other", "supervised"))


def test_default_reference_is_the_teacher_the_students_name():
    runs = [
        _run("teacher", "supervised", 1, {"a": 0.2}),
        _run("alone", "supervised", 1, {"a": 0.2}),
        _run("student", "distilled", 1, {"a": 0.1}, teacher="teacher"),
    ]
    assert default_reference(runs) == ("teacher", "supervised")
    assert default_reference(runs[:2]) is None
    unnamed = _run("student", "distilled", 1, {"a": 0.1}, teacher=None)
    assert default_reference([unnamed]) is None


def test_parse_reference():
    runs = [
        _run("teacher", "supervised", 1, {"a": 0.2}),
        _run("student", "distilled", 1, {"a": 0.1}),
        _run("student", "supervised", 1, {"a": 0.1}),
    ]
    assert parse_reference("teacher", runs) == ("teacher", "supervised")
    assert parse_reference("student:distilled", runs) == ("student", "distilled")
    choices = "student:distilled, student:supervised, teacher:supervised"
    with pytest.raises(DataError) as err:
        parse_reference("student", runs)
    assert (
        str(err.value)
        == f"--reference student: it was trained distilled and supervised; give MODEL:KIND, one of {choices}"
    )
    with pytest.raises(DataError) as err:
        parse_reference("nobody", runs)
    assert str(err.value) == f"--reference nobody: no runs of that network; give MODEL:KIND, one of {choices}"
    with pytest.raises(DataError) as err:
        parse_reference("teacher:teacher", runs)
    assert str(err.value) == (
        f"--reference teacher:teacher: unknown kind 'teacher'; the kinds are supervised and distilled "
        f"(choose one of {choices})"
    )


def test_group_table_means_and_sds_by_hand():
    runs = [
        _run("student", "distilled", 1, {"a": 0.2, "b": 0.4}),
        _run("student", "distilled", 2, {"a": 0.6, "b": 0.8}),
        _run("teacher", "supervised", 1, {"a": 0.5}),
    ]
    rows = {(r["model"], r["kind"]): r for r in group_table(runs)}
    s = rows[("student", "distilled")]
    assert (s["dataset"], s["split"], s["runs"], s["seeds"], s["resolution"], s["n_images"]) == (
        "kvasir 256",
        "test",
        2,
        [1, 2],
        "original",
        2,
    )
    # per-run mDice 0.3 and 0.7: mean 0.5, sample sd √((0.2² + 0.2²)/1)
    assert s["metrics"]["per_image.mdice"]["mean"] == pytest.approx(0.5)
    assert s["metrics"]["per_image.mdice"]["sd"] == pytest.approx(np.sqrt(0.08))
    assert s["metrics"]["per_image.mdice"]["n"] == 2
    assert s["metrics"]["pooled.specificity"] == {"mean": 0.95, "sd": pytest.approx(0.0), "n": 2}
    t = rows[("teacher", "supervised")]
    assert t["metrics"]["per_image.mdice"] == {"mean": 0.5, "sd": None, "n": 1}
    assert set(t["metrics"]) == {f"{sec}.{key}" for sec, key, _ in report.METRICS}


def test_group_table_keeps_only_splits_every_run_scored_and_names_a_missing_score():
    a = _run("student", "distilled", 1, {"a": 0.2})
    b = _run("student", "distilled", 2, {"a": 0.4})
    a.splits["val"] = a.splits["test"]
    assert [r["split"] for r in group_table([a, b])] == ["test"]
    del b.splits["test"]["pooled"]["iou"]
    with pytest.raises(
        DataError, match=r"runs/student-distilled-s2/eval/summary.json: no pooled.iou score for split test"
    ):
        group_table([a, b])
