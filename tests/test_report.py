"""Seeds and spread: ``--seeds`` gives each run its folder; ``report`` gives mean ± sd and paired
differences with a bootstrap interval."""

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
from microaunet_cli.evaluation.report import bootstrap_interval, build_report, to_markdown
from microaunet_cli.training.seeds import parse_seeds

METRIC_KEYS = {
    "per_image": ("mdice", "miou", "mae"),
    "pooled": ("dice", "iou", "accuracy", "sensitivity", "specificity"),
}


def _fake_run(
    root: Path, name: str, model: str, kind: str, seed: int, dice: list[float], teacher: str | None = None
) -> Path:
    """A run folder as train-teacher / distill leave it, with chosen per-image Dice."""
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
    summary = {"model": model, "training": kind, "status": "completed", "test": {"test": metrics}}
    if teacher is not None:
        summary["teacher"] = {"model": teacher}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "config.yaml").write_text(f"train:\n  seed: {seed}\n")
    with open(folder / "test_per_case.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["split", "index", "name", "dice", "iou"])
        for i, d in enumerate(dice):
            writer.writerow(["test", i, f"img{i}", d, d - 0.1])
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
    report = build_report(teachers + students, resamples=2000)
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
    text = to_markdown(report)
    assert "± " in text and "ΔmDice" in text and "| microaunet | distilled |" in text


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_images():
    rng = np.random.default_rng(1)
    small = rng.normal(0.02, 0.1, 30)
    large = rng.normal(0.02, 0.1, 3000)
    lo_s, hi_s = bootstrap_interval(small, resamples=4000)
    lo_l, hi_l = bootstrap_interval(large, resamples=4000)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5
    # About 1.96 standard errors either way.
    assert (hi_l - lo_l) / 2 == pytest.approx(1.96 * large.std(ddof=1) / np.sqrt(len(large)), rel=0.15)


def test_the_interval_carries_the_spread_over_seeds():
    """Three student seeds 0.04 apart on every image, against a teacher without spread: resampling the
    runs widens the interval beyond what the images alone give, and it still covers the mean."""
    rng = np.random.default_rng(2)
    base = rng.uniform(0.5, 0.9, 200)
    teacher = np.tile(base, (3, 1))
    student = np.stack([base + offset for offset in (-0.04, 0.0, 0.04)])
    images_only = bootstrap_interval(student.mean(axis=0) - base, resamples=4000)
    with_seeds = bootstrap_interval(student, teacher, resamples=4000)
    assert images_only == pytest.approx((0.0, 0.0), abs=1e-12)  # the same difference on every image
    assert with_seeds[0] < -0.02 and with_seeds[1] > 0.02


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

    (paired,) = build_report(runs([0, 1, 2], 0), resamples=2000)["differences"]
    assert paired["runs_paired_by_seed"] is True
    assert paired["dice"]["ci95"] == pytest.approx([-0.03, -0.03])
    teachers = runs([0, 1, 2], 1)[:3]
    students = runs([3, 4, 5], 2)[3:]
    (apart,) = build_report(teachers + students, resamples=2000)["differences"]
    assert apart["runs_paired_by_seed"] is False
    low, high = apart["dice"]["ci95"]
    assert apart["dice"]["difference"] == pytest.approx(-0.03)
    assert low < -0.06 and high > 0.0


def test_unknown_reference_and_missing_runs_are_clear(tmp_path):
    run = _fake_run(tmp_path, "t", "malunet", "supervised", 0, [0.5, 0.6])
    with pytest.raises(DataError, match="malunet:supervised"):
        build_report([run], reference="microaunet:distilled")
    with pytest.raises(DataError, match="no summary.json"):
        build_report([tmp_path / "nothing"])


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
            "--resamples",
            "500",
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
