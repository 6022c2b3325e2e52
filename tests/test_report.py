"""Seeds and spread: ``--seeds`` gives each run its folder; ``report`` gives mean ± sd and paired
differences with a t interval over seeds and images, whose coverage is checked by simulation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from microaunet_cli.cli.app import app
from microaunet_cli.data import PrepareSettings, prepare_dataset
from microaunet_cli.errors import ConfigError, DataError
from microaunet_cli.evaluation.intervals import difference_interval, t_quantile
from microaunet_cli.evaluation.report import build_report, to_markdown
from microaunet_cli.training.seeds import parse_seeds

METRIC_KEYS = {
    "per_image": ("mdice", "miou", "mae"),
    "pooled": ("dice", "iou", "accuracy", "sensitivity", "specificity"),
}


def _fake_run(
    root: Path,
    name: str,
    model: str,
    kind: str,
    seed: int | None,
    dice: list[float],
    teacher: str | None = None,
    dataset: str = "kvasir",
    params: int | None = None,
    teacher_params: int | None = None,
) -> Path:
    """A run folder as train-teacher / distill leave it, with chosen per-image Dice (``seed`` None: a
    run that records none)."""
    folder = root / name
    folder.mkdir(parents=True)
    mean = float(np.mean(dice))
    metrics = {
        "resolution": "original",
        "n_images": len(dice),
        "per_image": {"mdice": mean, "miou": mean - 0.1, "mae": 0.05},
        "pooled": {
            "dice": mean + 0.01,
            "iou": mean - 0.09,
            "accuracy": 0.9,
            "sensitivity": 0.8,
            "specificity": 0.95,
        },
    }
    summary = {
        "model": model,
        "training": kind,
        "dataset": dataset,
        "size": 128,
        "status": "completed",
        "test": {"test": metrics},
    }
    if params is not None:
        summary["params"] = params
    if teacher is not None:
        summary["teacher"] = {"model": teacher}
        if teacher_params is not None:
            summary["teacher"]["params"] = teacher_params
    (folder / "summary.json").write_text(json.dumps(summary))
    if seed is not None:
        (folder / "config.yaml").write_text(f"train:\n  seed: {seed}\n")
    with open(folder / "test_per_case.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["split", "index", "name", "dice", "iou"])
        for i, d in enumerate(dice):
            writer.writerow(["test", i, f"{dataset}-img{i}", d, d - 0.1])
    return folder


def test_mean_sd_and_paired_difference(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 0.9, 40)
    teachers = [
        _fake_run(tmp_path, f"t-s{s}", "malunet", "supervised", s, list(base + 0.01 * s)) for s in range(3)
    ]
    # The student is 0.05 worse on every image: the interval is tight around -0.05 (minus the seed offsets).
    students = [
        _fake_run(
            tmp_path,
            f"st-s{s}",
            "microaunet",
            "distilled",
            s,
            list(base - 0.05 + 0.01 * s),
            teacher="malunet",
        )
        for s in range(3)
    ]
    report = build_report(teachers + students)
    teacher_row = next(r for r in report["groups"] if r["kind"] == "supervised")
    values = [float(np.mean(base + 0.01 * s)) for s in range(3)]
    assert teacher_row["metrics"]["per_image.mdice"]["mean"] == pytest.approx(np.mean(values))
    assert teacher_row["metrics"]["per_image.mdice"]["sd"] == pytest.approx(np.std(values, ddof=1))
    assert teacher_row["runs"] == 3 and teacher_row["seeds"] == [0, 1, 2]
    assert set(teacher_row["metrics"]) == {f"{s}.{k}" for s, keys in METRIC_KEYS.items() for k in keys}
    (diff,) = report["differences"]
    assert diff["model"] == "microaunet" and diff["n_images"] == 40
    assert diff["dice"]["difference"] == pytest.approx(-0.05)
    low, high = diff["dice"]["ci95"]
    assert low == pytest.approx(-0.05) and high == pytest.approx(-0.05)  # a constant difference has no spread
    assert diff["dice"]["seeds"] == 3 and diff["dice"]["reference_seeds"] == 3
    text = to_markdown(report)
    assert "± " in text and "ΔmDice" in text and "| microaunet | distilled |" in text
    assert "-0.0500 [-0.0500, -0.0500] (t, 3 seeds paired)" in text


def test_t_quantiles_match_the_tables():
    # Student t 97.5% points from the printed tables; df 2.5 between the whole ones.
    for df, q in ((1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423), (1e6, 1.9600)):
        assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-4)
        assert t_quantile(0.025, df) == pytest.approx(-q, abs=1e-4)
    assert 4.3027 > t_quantile(0.975, 2.5) > 3.1824  # between df 2 and df 3
    assert t_quantile(0.95, 5) == pytest.approx(2.0150, abs=1e-4)


def test_one_seed_gives_an_interval_over_images_only_and_says_so():
    """One run a side: no spread over seeds to estimate; the classic paired t-interval over images."""
    rng = np.random.default_rng(1)
    theirs = rng.uniform(0.4, 0.9, 30)
    ours = theirs + rng.normal(0.02, 0.1, 30)
    iv = difference_interval(ours, theirs, paired=True)
    d = ours - theirs
    half = 2.0452 * d.std(ddof=1) / np.sqrt(30)  # t(0.975, 29)
    assert iv.difference == pytest.approx(d.mean())
    assert (iv.low, iv.high) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-4)
    assert iv.df == pytest.approx(29) and iv.over == "images only" and iv.seeds == 1
    assert "images only" in iv.label and "1 vs 1 seed" in iv.label


def test_the_interval_carries_the_spread_over_seeds():
    """Three student seeds 0.04 apart on every image, against a teacher without spread: the images
    alone show no spread; the seeds do, with t quantiles at 2 degrees of freedom."""
    rng = np.random.default_rng(2)
    base = rng.uniform(0.5, 0.9, 200)
    teacher = np.tile(base, (3, 1))
    student = np.stack([base + offset for offset in (-0.04, 0.0, 0.04)])
    iv = difference_interval(student, teacher, paired=False)
    half = 4.3027 * 0.04 / np.sqrt(3)  # sd of the seeds' means 0.04, t(0.975, 2)
    assert iv.difference == pytest.approx(0.0, abs=1e-12)
    assert (iv.low, iv.high) == pytest.approx((-half, half), abs=1e-4)
    assert iv.df == pytest.approx(2) and iv.label == "t, 3 vs 3 seeds"


def _simulated_coverage(seeds: int, seed_sd: float, image_sd: float, noise_sd: float, reps: int):
    """How often the report's interval (and a normal one of the same width) holds a true difference
    of 0: 100 test images, each run of either network moved by its seed, each image harder for one
    network than the other, and per-run, per-image noise. Test sets and seeds drawn afresh each time."""
    rng = np.random.default_rng(seeds)
    n = 100
    base = rng.uniform(0.3, 0.95, (reps, 1, n))
    image = rng.normal(0, image_sd, (reps, 1, n))
    seed_a, seed_b = (rng.normal(0, seed_sd / np.sqrt(2), (reps, seeds, 1)) for _ in range(2))
    noise_a, noise_b = (rng.normal(0, noise_sd / np.sqrt(2), (reps, seeds, n)) for _ in range(2))
    ours, theirs = base + image + seed_a + noise_a, base + seed_b + noise_b
    held = normal_held = 0
    for a, b in zip(ours, theirs):
        iv = difference_interval(a, b, paired=True)
        held += iv.low <= 0 <= iv.high
        z_half = (iv.high - iv.low) / 2 * 1.959964 / t_quantile(0.975, iv.df)
        normal_held += abs(iv.difference) <= z_half
    return held / reps, normal_held / reps


@pytest.mark.parametrize("seeds", [3, 5])
@pytest.mark.parametrize(
    ("seed_sd", "image_sd", "noise_sd"),
    [(0.02, 0.03, 0.05), (0.015, 0.05, 0.10)],
    ids=["seeds-dominate", "images-dominate"],
)
def test_the_interval_covers_a_true_difference_of_zero_95_percent_of_the_time(
    seeds, seed_sd, image_sd, noise_sd
):
    """Nominal 95%: at least 93% over 1,500 simulated experiments. The per-seed spread is that of the
    Kvasir runs (paired differences 0.009, 0.020, 0.039: sd 0.015). The same variance with normal
    quantiles (what a large-sample interval or a percentile bootstrap over three seeds amounts to)
    falls short at 3 seeds, so the simulation can tell a narrow interval."""
    coverage, normal = _simulated_coverage(seeds, seed_sd, image_sd, noise_sd, reps=1500)
    assert coverage >= 0.93
    assert coverage <= 0.99  # not bought by a uselessly wide interval
    if seeds == 3:
        assert normal < 0.91


def test_runs_are_paired_by_seed_when_both_groups_ran_the_same_seeds(tmp_path):
    """Each student 0.03 below the teacher of its seed, the seeds 0.05 apart: paired by seed the interval
    is exactly -0.03; with seeds that do not match, the runs are resampled apart and it widens."""
    base = np.random.default_rng(3).uniform(0.5, 0.9, 30)

    def runs(seeds: list[int], offset: int) -> list[Path]:
        return [
            _fake_run(tmp_path, f"t{offset}-s{s}", "malunet", "supervised", s, list(base + 0.05 * i))
            for i, s in enumerate(seeds)
        ] + [
            _fake_run(
                tmp_path,
                f"st{offset}-s{s}",
                "microaunet",
                "distilled",
                s,
                list(base + 0.05 * i - 0.03),
                teacher="malunet",
            )
            for i, s in enumerate(seeds)
        ]

    (paired,) = build_report(runs([0, 1, 2], 0))["differences"]
    assert paired["runs_paired_by_seed"] is True
    assert paired["dice"]["ci95"] == pytest.approx([-0.03, -0.03])
    teachers = runs([0, 1, 2], 1)[:3]
    students = runs([3, 4, 5], 2)[3:]
    (apart,) = build_report(teachers + students)["differences"]
    assert apart["runs_paired_by_seed"] is False
    assert apart["dice"]["difference"] == pytest.approx(-0.03)
    # Each side's seeds 0.05 apart (sd 0.05), the images adding nothing: Welch df 4, t(0.975, 4).
    half = 2.7764 * np.sqrt(2 * 0.05**2 / 3)
    assert apart["dice"]["ci95"] == pytest.approx([-0.03 - half, -0.03 + half], abs=1e-4)
    assert apart["dice"]["df"] == pytest.approx(4) and apart["dice"]["label"] == "t, 3 vs 3 seeds"


def test_unknown_reference_and_missing_runs_are_clear(tmp_path):
    run = _fake_run(tmp_path, "t", "malunet", "supervised", 0, [0.5, 0.6])
    with pytest.raises(DataError, match="malunet:supervised"):
        build_report([run], reference="microaunet:distilled")
    with pytest.raises(DataError, match="nothing: no such run folder"):
        build_report([tmp_path / "nothing"])
    with pytest.raises(DataError, match="unknown kind 'teacher'"):
        build_report([run], reference="malunet:teacher")


def test_parse_seeds():
    assert parse_seeds("0,1, 2") == [0, 1, 2]
    for bad in ("a,b", "1,1", ""):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_seeds_give_each_run_its_folder_and_report_reads_them(tmp_path):
    """train-teacher and distill with --seeds, then report: real runs, end to end."""
    data = tmp_path / "data"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=data, size=32, synthetic_count=16, workers=1))
    common = [
        "--data-dir",
        str(data),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--quiet",
        "--device",
        "cpu",
        "--set",
        f"output.runs_dir={tmp_path / 'runs'}",
    ]
    cli = CliRunner()
    result = cli.invoke(app, ["train-teacher", "--seeds", "0,1", *common])
    assert result.exit_code == 0, result.output
    runs = tmp_path / "runs"
    # Each seed's folder as it is, also under output.runs_dir (which used to be printed as runs/).
    assert f"seed 1: {runs / 'synthetic-malunet-s1'}" in " ".join(result.output.split())
    result = cli.invoke(app, ["distill", "--model", "microaunet_fast", "--seeds", "0,1", *common])
    assert result.exit_code == 0, result.output
    for seed in (0, 1):
        teacher = json.loads((runs / f"synthetic-malunet-s{seed}" / "summary.json").read_text())
        student = json.loads(
            (runs / f"synthetic-microaunet_fast-distill-s{seed}" / "summary.json").read_text()
        )
        # Each student learned from the teacher of its own seed.
        assert student["teacher"]["path"].endswith(f"synthetic-malunet-s{seed}/checkpoints/best.pt")
        assert student["teacher"]["data"]["status"] == "same data"
        assert teacher["test"]["test"]["resolution"] == "original"
        assert (runs / f"synthetic-malunet-s{seed}" / "test_per_case.csv").is_file()
    folders = sorted(str(p) for p in runs.iterdir())
    result = cli.invoke(
        app,
        [
            "report",
            *folders,
            "--json",
            str(tmp_path / "r.json"),
            "--markdown",
            str(tmp_path / "r.md"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert {(g["model"], g["kind"], g["runs"]) for g in report["groups"]} == {
        ("malunet", "supervised", 2),
        ("microaunet_fast", "distilled", 2),
    }
    assert report["reference"] == {"model": "malunet", "kind": "supervised"}
    assert report["differences"][0]["n_images"] > 0
    assert (tmp_path / "r.md").read_text() in result.output.replace("\r", "")


def _teacher_and_students(
    root: Path, dataset: str, teacher_seeds: list[int | None], offset: float = 0.02
) -> list[Path]:
    """Teacher runs with the given seeds (None: none recorded) and three distilled students, seeds 0-2,
    ``offset`` better than the teacher on every image (plus a per-seed wobble)."""
    base = np.random.default_rng(4).uniform(0.5, 0.9, 20)
    teachers = [
        _fake_run(root, f"{dataset}-t{i}", "malunet", "supervised", s, list(base + 0.01 * i), dataset=dataset)
        for i, s in enumerate(teacher_seeds)
    ]
    students = [
        _fake_run(
            root,
            f"{dataset}-st{s}",
            "microaunet_rt",
            "distilled",
            s,
            list(base + offset + 0.005 * s),
            teacher="malunet",
            dataset=dataset,
        )
        for s in range(3)
    ]
    return teachers + students


def test_reference_runs_without_a_recorded_seed_are_compared_unpaired(tmp_path):
    report = build_report(_teacher_and_students(tmp_path, "kvasir", [None, None, None]))
    (diff,) = report["differences"]
    assert diff["runs_paired_by_seed"] is False
    assert diff["dice"]["difference"] == pytest.approx(0.02 + 0.005 - 0.01)


def test_reference_given_as_a_model_alone_takes_its_one_training_kind(tmp_path):
    runs = _teacher_and_students(tmp_path, "kvasir", [0, 1, 2])
    report = build_report(runs, reference="malunet")
    assert report["reference"] == {"model": "malunet", "kind": "supervised"}
    (diff,) = report["differences"]
    # Student seed s: +0.02 + 0.005 s; teacher seed i: +0.01 i; paired, the mean of 0.02 - 0.005 s.
    assert diff["model"] == "microaunet_rt" and diff["dice"]["difference"] == pytest.approx(0.015)
    assert diff["runs_paired_by_seed"] is True
    with pytest.raises(DataError, match="malunet:supervised"):
        build_report(runs, reference="malunet:teacher")  # a role, not a training kind: say which exist
    with pytest.raises(DataError, match="no runs of that network"):
        build_report(runs, reference="unet")


def test_one_network_name_at_two_widths_is_two_networks_never_pooled(tmp_path):
    """A malunet trained wider (model.c_list) is reported apart from the default malunet, and the
    students' teachers carry the same labels (the default reference is the first student's teacher,
    at its width). Students of one network stay one group, whichever teacher they learned from."""
    base = np.linspace(0.5, 0.9, 20)
    runs = []
    for tag, params, offset in (("t", 177_943, 0.0), ("w", 674_119, 0.04)):
        for s in range(2):
            dice = list(base + offset)
            runs.append(_fake_run(tmp_path, f"{tag}-s{s}", "malunet", "supervised", s, dice, params=params))
            runs.append(
                _fake_run(
                    tmp_path,
                    f"{tag}-st-s{s}",
                    "microaunet_rt",
                    "distilled",
                    s,
                    list(base + offset + 0.01),
                    teacher="malunet",
                    params=87_987,
                    teacher_params=params,
                )
            )
    report = build_report(runs, reference="malunet[674119]:supervised")
    rows = {(g["model"], g["kind"]): g["runs"] for g in report["groups"]}
    assert rows == {
        ("malunet[177943]", "supervised"): 2,
        ("malunet[674119]", "supervised"): 2,
        ("microaunet_rt", "distilled"): 4,  # one student network (same width), from two teachers
    }
    by_model = {d["model"]: d["dice"]["difference"] for d in report["differences"]}
    # Students average base + 0.03 (two at +0.01, two at +0.05); the wide teachers are at base + 0.04.
    assert by_model == pytest.approx({"malunet[177943]": -0.04, "microaunet_rt": -0.01})
    # Without --reference: the first student's teacher, at its width.
    assert build_report(runs)["reference"] == {"model": "malunet[177943]", "kind": "supervised"}
    assert "| malunet[674119] | supervised |" in to_markdown(report)
    # One width only: the plain name, as before.
    (one,) = [r for r in runs if r.name == "t-s0"]
    assert build_report([one])["groups"][0]["model"] == "malunet"


def test_runs_on_different_data_sets_get_their_own_rows_and_differences(tmp_path):
    runs = _teacher_and_students(tmp_path, "kvasir", [0, 1, 2], offset=0.02) + _teacher_and_students(
        tmp_path, "cvc", [0, 1, 2], offset=-0.03
    )
    report = build_report(runs)
    rows = {(g["dataset"], g["model"]): g["runs"] for g in report["groups"]}
    assert rows == {
        ("kvasir 128 px", "malunet"): 3,
        ("kvasir 128 px", "microaunet_rt"): 3,
        ("cvc 128 px", "malunet"): 3,
        ("cvc 128 px", "microaunet_rt"): 3,
    }
    differences = {d["dataset"]: d["dice"]["difference"] for d in report["differences"]}
    assert differences == pytest.approx({"kvasir 128 px": 0.015, "cvc 128 px": -0.035})
    text = to_markdown(report)
    assert "| cvc 128 px | microaunet_rt |" in text and "| kvasir 128 px | microaunet_rt |" in text


def test_a_data_set_without_reference_runs_is_listed_not_dropped(tmp_path):
    runs = _teacher_and_students(tmp_path, "kvasir", [0, 1, 2]) + _teacher_and_students(tmp_path, "cvc", [])
    report = build_report(runs)
    cvc = [d for d in report["differences"] if d["dataset"] == "cvc 128 px"]
    assert len(cvc) == 1 and cvc[0]["note"] == "no malunet:supervised runs on cvc 128 px"
    assert "| cvc 128 px | microaunet_rt | distilled | — | — | no malunet:supervised runs" in to_markdown(
        report
    )


def test_runs_sharing_no_test_image_are_listed_with_the_reason(tmp_path):
    runs = _teacher_and_students(tmp_path, "kvasir", [0, 1, 2])
    for student in runs[3:]:  # the students scored other images under the same split name
        table = (student / "test_per_case.csv").read_text().replace("kvasir-img", "other-img")
        (student / "test_per_case.csv").write_text(table)
    (diff,) = build_report(runs)["differences"]
    assert "no test image scored by every run" in diff["note"] and "dice" not in diff


def test_unreadable_run_folders_are_named_and_the_others_reported(tmp_path):
    good = _teacher_and_students(tmp_path, "kvasir", [0, 1, 2])
    corrupt = _fake_run(tmp_path, "corrupt", "malunet", "supervised", 3, [0.5, 0.6])
    (corrupt / "summary.json").write_text('{"model": "malunet", "test": {')  # cut off mid-write
    empty = tmp_path / "empty"
    empty.mkdir()
    no_model = _fake_run(tmp_path, "no-model", "malunet", "supervised", 4, [0.5, 0.6])
    (no_model / "summary.json").write_text("[1, 2]")
    damaged = _fake_run(tmp_path, "damaged", "malunet", "supervised", 5, [0.5, 0.6])
    (damaged / "test_per_case.csv").write_text("split,index,name,dice,iou\ntest,0,img0,oops,0.1\n")
    missing = tmp_path / "missing"
    report = build_report([*good, corrupt, empty, no_model, damaged, missing])
    reasons = {Path(x["folder"]).name: x["reason"] for x in report["left_out"]}
    assert set(reasons) == {"corrupt", "empty", "no-model", "damaged", "missing"}
    assert "summary.json: not readable JSON" in reasons["corrupt"]
    assert "no summary.json" in reasons["empty"]
    assert "holds no summary object" in reasons["no-model"]
    assert "line 2: not a per-image score row" in reasons["damaged"]
    assert "no such run folder" in reasons["missing"]
    assert sum(g["runs"] for g in report["groups"]) == 6  # the readable runs, all of them
    result = CliRunner().invoke(app, ["report", *map(str, good), str(corrupt), str(missing)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "2 run folder(s) left out" in result.output and "Traceback" not in result.output
    assert "| kvasir 128 px | microaunet_rt | distilled | test | 20 |" in result.output
    with pytest.raises(DataError, match="none of the run folders could be read"):
        build_report([missing, empty])
