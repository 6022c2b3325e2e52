"""``microaunet report``: several runs summarised for a paper, grouped by network and kind.

For each group and test split: mean ± sd over the runs (seeds) of every test metric. Against a
reference group (the students' teacher by default): the paired difference of per-image Dice and IoU
over the test images, with a 95% bootstrap interval that resamples both the test images and the runs
(seeds) of each group, so it carries the spread over seeds as well as over images. Runs are paired
by seed (run k against run k) when both groups ran the same seeds, as a student distilled from the
teacher of its seed.

A run's scores come from its ``summary.json`` and ``test_per_case.csv`` (written by train-teacher and
distill). A run trained before test scores were kept at original resolution is read from the
``eval-test/`` folder that ``microaunet evaluate --ckpt RUN/checkpoints/best.pt`` writes.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from microaunet_cli.errors import DataError
from microaunet_cli.evaluation.scoring import TEST_CASES

log = logging.getLogger(__name__)

METRICS = (
    ("per_image", "mdice", "mDice"),
    ("per_image", "miou", "mIoU"),
    ("per_image", "mae", "MAE"),
    ("pooled", "dice", "Dice (pooled)"),
    ("pooled", "iou", "IoU (pooled)"),
    ("pooled", "accuracy", "Accuracy"),
    ("pooled", "sensitivity", "Sensitivity"),
    ("pooled", "specificity", "Specificity"),
)
PAIRED = (("dice", "mDice"), ("iou", "mIoU"))
CONFIDENCE = 0.95


@dataclass
class RunScores:
    """What the report needs of one run."""

    folder: Path
    model: str
    kind: str
    seed: int | None
    teacher_model: str | None
    splits: dict[str, dict[str, Any]]  # split -> summary metrics (with "resolution")
    cases: dict[str, dict[str, dict[str, float]]] = field(
        default_factory=dict
    )  # split -> name -> {dice, iou}
    source: str = ""

    @property
    def group(self) -> tuple[str, str]:
        return self.model, self.kind


def _read_cases(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    cases: dict[str, dict[str, dict[str, float]]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            cases.setdefault(row["split"], {})[row["name"]] = {
                "dice": float(row["dice"]),
                "iou": float(row["iou"]),
            }
    return cases


def _seed(folder: Path) -> int | None:
    config = folder / "config.yaml"
    if not config.is_file():
        return None
    return ((yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("train") or {}).get("seed")


# Summaries written before roles and training were recorded apart held one "kind".
_OLD_KIND_TRAINING = {"teacher": "supervised", "student": "distilled"}


def _training(summary: dict[str, Any]) -> str:
    """How the run trained its network: supervised (train-teacher) or distilled."""
    return summary.get("training") or _OLD_KIND_TRAINING.get(summary.get("kind"), "supervised")


def read_run(folder: Path) -> RunScores:
    """The test scores of a run folder (see the module docstring for where they are read from)."""
    folder = Path(folder)
    path = folder / "summary.json"
    if not path.is_file():
        raise DataError(
            f"{folder}: no summary.json; give the folder of a finished train-teacher or distill run"
        )
    summary = json.loads(path.read_text(encoding="utf-8"))
    teacher_model = (summary.get("teacher") or {}).get("model")
    base = {
        "folder": folder,
        "model": summary["model"],
        "kind": _training(summary),
        "seed": _seed(folder),
        "teacher_model": teacher_model,
    }
    test = summary.get("test") or {}
    if (
        test
        and all(r.get("resolution") == "original" for r in test.values())
        and (folder / TEST_CASES).is_file()
    ):
        return RunScores(**base, splits=test, cases=_read_cases(folder / TEST_CASES), source=str(path))
    evaluated = folder / "eval-test"
    if (evaluated / "summary.json").is_file() and (evaluated / "per_case.csv").is_file():
        scored = json.loads((evaluated / "summary.json").read_text(encoding="utf-8"))
        return RunScores(
            **base,
            splits=scored["splits"],
            cases=_read_cases(evaluated / "per_case.csv"),
            source=str(evaluated / "summary.json"),
        )
    if not test:
        raise DataError(
            f"{folder}: the run has no test scores (it did not finish?); run `microaunet evaluate "
            f"--ckpt {folder}/checkpoints/best.pt` and report again"
        )
    log.warning(
        "%s: test scores at the resized resolution and no per-image scores (a run from before they were "
        "kept); run `microaunet evaluate --ckpt %s/checkpoints/best.pt` to score it at original resolution",
        folder,
        folder,
    )
    labelled = {
        s: {"resolution": r.get("resolution", "resized (run from before original-resolution scoring)"), **r}
        for s, r in test.items()
    }
    return RunScores(**base, splits=labelled, source=str(path))


def _mean_sd(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
    }


def group_table(runs: list[RunScores]) -> list[dict[str, Any]]:
    """One row per (network, kind, split): mean ± sd over runs of each metric."""
    groups: dict[tuple[str, str], list[RunScores]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    rows = []
    for (model, kind), members in groups.items():
        splits = [s for s in members[0].splits if all(s in m.splits for m in members)]
        for split in splits:
            resolutions = sorted({m.splits[split].get("resolution", "") for m in members})
            if len(resolutions) > 1:
                log.warning(
                    "%s %s on %s mixes resolutions (%s): their mean is not meaningful",
                    model,
                    kind,
                    split,
                    ", ".join(resolutions),
                )
            row = {
                "model": model,
                "kind": kind,
                "split": split,
                "runs": len(members),
                "seeds": [m.seed for m in members],
                "resolution": " / ".join(resolutions),
                "n_images": members[0].splits[split].get("n_images"),
                "metrics": {},
            }
            for section, key, _ in METRICS:
                row["metrics"][f"{section}.{key}"] = _mean_sd(
                    [float(m.splits[split][section][key]) for m in members]
                )
            rows.append(row)
    return rows


def bootstrap_interval(
    ours: np.ndarray,
    theirs: np.ndarray | None = None,
    resamples: int = 10_000,
    seed: int = 0,
    paired_runs: bool = False,
) -> tuple[float, float]:
    """Percentile interval of the mean difference, resampling test images and runs with replacement.

    ``ours`` and ``theirs`` are runs × images score matrices (one row per seed; a 1-D array is one
    run), or ``ours`` alone holds differences. Each resample draws the images once for both groups
    (paired by image) and the runs of each group; with ``paired_runs`` the same rows for both (run k
    against run k: a student distilled from the teacher of its seed), else independently. So the
    interval carries the spread over seeds as well as over images.
    """
    rng = np.random.default_rng(seed)
    a = np.atleast_2d(np.asarray(ours, dtype=float))
    b = None if theirs is None else np.atleast_2d(np.asarray(theirs, dtype=float))
    n = a.shape[1]
    means = []
    for start in range(0, resamples, 1000):  # in chunks: resamples x runs x images stays small
        k = min(1000, resamples - start)
        rows_a = rng.integers(0, len(a), (k, len(a)))
        per_image = a[rows_a].mean(axis=1)
        if b is not None:
            rows_b = rows_a if paired_runs else rng.integers(0, len(b), (k, len(b)))
            per_image = per_image - b[rows_b].mean(axis=1)
        images = rng.integers(0, n, (k, n))
        means.append(np.take_along_axis(per_image, images, axis=1).mean(axis=1))
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(np.concatenate(means), [tail, 100 - tail])
    return float(low), float(high)


def _score_matrix(members: list[RunScores], split: str, key: str, names: list[str]) -> np.ndarray:
    """Runs (in seed order, runs without a recorded seed last) × images."""
    ordered = sorted(members, key=lambda m: (m.seed is None, m.seed or 0))
    return np.array([[m.cases[split][n][key] for n in names] for m in ordered], dtype=float)


def _paired_by_seed(members: list[RunScores], reference: list[RunScores]) -> bool:
    """Whether both groups ran the same seeds, once each: then run k is compared with run k."""
    seeds, ref_seeds = [m.seed for m in members], [m.seed for m in reference]
    return None not in seeds and len(set(seeds)) == len(seeds) and sorted(seeds) == sorted(ref_seeds)


def default_reference(runs: list[RunScores]) -> tuple[str, str] | None:
    """The teacher named by the students' runs, trained with train-teacher."""
    for run in runs:
        if run.kind == "distilled" and run.teacher_model is not None:
            return run.teacher_model, "supervised"
    return None


def paired_differences(
    runs: list[RunScores], reference: tuple[str, str], resamples: int
) -> list[dict[str, Any]]:
    """Every other group minus the reference, per test image, with a bootstrap interval."""
    groups: dict[tuple[str, str], list[RunScores]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    if reference not in groups:
        raise DataError(
            f"--reference {reference[0]}:{reference[1]}: no such runs among those given; choose one of "
            f"{', '.join(f'{m}:{k}' for m, k in groups)}"
        )
    ref_runs = groups[reference]
    rows = []
    for group, members in groups.items():
        if group == reference:
            continue
        for split in ref_runs[0].splits:
            if not all(m.cases.get(split) for m in members + ref_runs):
                continue
            row = {
                "model": group[0],
                "kind": group[1],
                "reference": f"{reference[0]} ({reference[1]})",
                "split": split,
                "runs": len(members),
                "reference_runs": len(ref_runs),
            }
            names = sorted(set.intersection(*(set(m.cases[split]) for m in members + ref_runs)))
            paired = _paired_by_seed(members, ref_runs)
            row["runs_paired_by_seed"] = paired
            for key, label in PAIRED:
                if not names:
                    continue
                ours = _score_matrix(members, split, key, names)
                theirs = _score_matrix(ref_runs, split, key, names)
                difference = float(ours.mean() - theirs.mean())
                low, high = bootstrap_interval(ours, theirs, resamples, paired_runs=paired)
                row["n_images"] = len(names)
                row[key] = {"label": label, "difference": difference, "ci95": [low, high]}
            if "dice" in row:
                rows.append(row)
    return rows


def build_report(
    folders: list[Path], reference: str | None = None, resamples: int = 10_000
) -> dict[str, Any]:
    if not folders:
        raise DataError("give at least one run folder: microaunet report runs/NAME-s0 runs/NAME-s1 ...")
    runs = [read_run(Path(f)) for f in folders]
    ref = tuple(reference.split(":", 1)) if reference else default_reference(runs)  # type: ignore[assignment]
    if ref is not None and len(ref) == 1:
        ref = (ref[0], "teacher")
    differences = paired_differences(runs, ref, resamples) if ref is not None else []
    return {
        "runs": [
            {"folder": str(r.folder), "model": r.model, "kind": r.kind, "seed": r.seed, "source": r.source}
            for r in runs
        ],
        "groups": group_table(runs),
        "reference": None if ref is None else {"model": ref[0], "kind": ref[1]},
        "differences": differences,
        "method": {
            "spread": "mean ± sample sd over runs (seeds)",
            "difference": f"mean per-image difference over the images every run scored; "
            f"{CONFIDENCE:.0%} percentile bootstrap interval resampling the test images (paired) and "
            f"each group's runs (paired by seed when both ran the same seeds) ({resamples} resamples)",
        },
    }


def _fmt(stat: dict[str, Any]) -> str:
    if stat["sd"] is None or math.isnan(stat["sd"]):
        return f"{stat['mean']:.4f}"
    return f"{stat['mean']:.4f} ± {stat['sd']:.4f}"


def to_markdown(report: dict[str, Any]) -> str:
    lines = []
    for split in dict.fromkeys(row["split"] for row in report["groups"]):
        rows = [r for r in report["groups"] if r["split"] == split]
        lines += [
            f"### {split}",
            "",
            "| network | kind | runs | resolution | " + " | ".join(label for *_, label in METRICS) + " |",
            "| --- | --- | ---: | --- | " + " | ".join("---:" for _ in METRICS) + " |",
        ]
        for r in rows:
            values = [_fmt(r["metrics"][f"{s}.{k}"]) for s, k, _ in METRICS]
            cells = [r["model"], r["kind"], str(r["runs"]), r["resolution"], *values]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if report["differences"]:
        lines += [
            f"### Paired difference against {report['differences'][0]['reference']}, per test image",
            "",
            "| network | kind | split | images | ΔmDice [95% CI] | ΔmIoU [95% CI] |",
            "| --- | --- | --- | ---: | ---: | ---: |",
        ]
        for d in report["differences"]:
            cells = [
                f"{d[k]['difference']:+.4f} [{d[k]['ci95'][0]:+.4f}, {d[k]['ci95'][1]:+.4f}]"
                if k in d
                else "—"
                for k, _ in PAIRED
            ]
            lines.append(
                f"| {d['model']} | {d['kind']} | {d['split']} | {d['n_images']} | " + " | ".join(cells) + " |"
            )
        lines.append("")
    lines.append(f"Mean ± sd over runs (seeds). {report['method']['difference'].capitalize()}.")
    return "\n".join(lines) + "\n"
