"""``microaunet report``: several runs summarised for a paper, grouped by data set, network and kind.

For each group and test split: mean ± sd over the runs (seeds) of every test metric. Against a
reference group (the students' teacher by default) on the same data set: the paired difference of
per-image Dice and IoU over the test images, with a 95% Student t interval that carries the spread
over seeds as well as over images (``intervals.py``), labelled with the seed count it rests on. Runs
are paired by seed (run k against run k) when both groups ran the same seeds, as a student distilled
from the teacher of its seed.

Runs trained on different data sets (or sizes) are never pooled: each gets its own rows, and is
compared only with the reference runs of its own data. A comparison that cannot be made is listed
with the reason, never dropped. A run folder that cannot be read is left out, named, and the report
goes on with the others.

A run's scores come from its ``summary.json`` and ``test_per_case.csv`` (written by train-teacher and
distill). A run trained before test scores were kept at original resolution is read from the
``eval-test/`` folder that ``microaunet evaluate --ckpt RUN/checkpoints/best.pt`` writes.
"""

from __future__ import annotations

import logging
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from microaunet_cli.errors import DataError
from microaunet_cli.evaluation.intervals import CONFIDENCE, difference_interval
from microaunet_cli.evaluation.report_runs import KINDS, RunScores, read_runs

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


def _mean_sd(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
    }


def _groups(runs: list[RunScores]) -> dict[tuple[str, str, str], list[RunScores]]:
    groups: dict[tuple[str, str, str], list[RunScores]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    return groups


def _metric(run: RunScores, split: str, section: str, key: str) -> float:
    try:
        return float(run.splits[split][section][key])
    except (KeyError, TypeError, ValueError):
        raise DataError(
            f"{run.source}: no {section}.{key} score for split {split}; the file is damaged or from "
            f"another tool: rerun `microaunet evaluate --ckpt {run.folder}/checkpoints/best.pt`"
        ) from None


def group_table(runs: list[RunScores]) -> list[dict[str, Any]]:
    """One row per (data, network, kind, split): mean ± sd over runs of each metric."""
    rows = []
    for (data, model, kind), members in _groups(runs).items():
        splits = [s for s in members[0].splits if all(s in m.splits for m in members)]
        for split in splits:
            resolutions = sorted({str(m.splits[split].get("resolution", "not recorded")) for m in members})
            if len(resolutions) > 1:
                log.warning(
                    "%s %s on %s %s mixes resolutions (%s): their mean is not meaningful",
                    model,
                    kind,
                    data,
                    split,
                    ", ".join(resolutions),
                )
            row = {
                "dataset": data,
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
                    [_metric(m, split, section, key) for m in members]
                )
            rows.append(row)
    return rows


def _by_seed(members: list[RunScores]) -> list[RunScores]:
    """Runs in seed order, runs without a recorded seed last."""
    return sorted(members, key=lambda m: (m.seed is None, m.seed or 0))


def _score_matrix(members: list[RunScores], split: str, key: str, names: list[str]) -> np.ndarray:
    """Runs (in seed order) × images."""
    return np.array([[m.cases[split][n][key] for n in names] for m in _by_seed(members)], dtype=float)


def _paired_by_seed(members: list[RunScores], reference: list[RunScores]) -> bool:
    """Whether both groups ran the same seeds, once each: then run k is compared with run k."""
    seeds, ref_seeds = [m.seed for m in members], [m.seed for m in reference]
    if None in seeds or None in ref_seeds or len(set(seeds)) != len(seeds):
        return False
    return sorted(seeds) == sorted(ref_seeds)


def default_reference(runs: list[RunScores]) -> tuple[str, str] | None:
    """The teacher named by the students' runs, trained with train-teacher."""
    for run in runs:
        if run.kind == "distilled" and run.teacher_model is not None:
            return run.teacher_model, "supervised"
    return None


def parse_reference(reference: str, runs: list[RunScores]) -> tuple[str, str]:
    """``MODEL:KIND``, or ``MODEL`` alone when the runs trained that network one way only."""
    model, _, kind = reference.partition(":")
    present = sorted({(r.model, r.kind) for r in runs})
    choices = ", ".join(f"{m}:{k}" for m, k in present)
    if kind and kind not in KINDS:
        raise DataError(
            f"--reference {reference}: unknown kind {kind!r}; the kinds are {' and '.join(KINDS)} "
            f"(choose one of {choices})"
        )
    if kind:
        return model, kind
    kinds = [k for m, k in present if m == model]
    if len(kinds) != 1:
        why = "no runs of that network" if not kinds else f"it was trained {' and '.join(kinds)}"
        raise DataError(f"--reference {reference}: {why}; give MODEL:KIND, one of {choices}")
    return model, kinds[0]


def _note_row(group: tuple[str, str, str], reference: tuple[str, str], split: str, note: str) -> dict:
    log.warning("%s %s (%s) against %s:%s on %s: %s", group[1], group[2], group[0], *reference, split, note)
    return {
        "dataset": group[0],
        "model": group[1],
        "kind": group[2],
        "reference": f"{reference[0]} ({reference[1]})",
        "split": split,
        "note": note,
    }


def _difference_row(
    group: tuple[str, str, str], reference: tuple[str, str], split: str, members: list, ref_runs: list
) -> dict[str, Any]:
    missing = [str(m.folder) for m in members + ref_runs if not m.cases.get(split)]
    if missing:
        return _note_row(
            group,
            reference,
            split,
            f"no per-image scores in {', '.join(missing)}: run `microaunet evaluate --ckpt "
            f"RUN/checkpoints/best.pt` on each",
        )
    names = sorted(set.intersection(*(set(m.cases[split]) for m in members + ref_runs)))
    if not names:
        return _note_row(group, reference, split, "no test image scored by every run (other test sets?)")
    paired = _paired_by_seed(members, ref_runs)
    row = {
        "dataset": group[0],
        "model": group[1],
        "kind": group[2],
        "reference": f"{reference[0]} ({reference[1]})",
        "split": split,
        "runs": len(members),
        "reference_runs": len(ref_runs),
        "runs_paired_by_seed": paired,
        "n_images": len(names),
        "note": None,
    }
    for key, label in PAIRED:
        ours = _score_matrix(members, split, key, names)
        theirs = _score_matrix(ref_runs, split, key, names)
        row[key] = {"label": label, **difference_interval(ours, theirs, paired).as_dict()}
    return row


def paired_differences(runs: list[RunScores], reference: tuple[str, str]) -> list[dict[str, Any]]:
    """Every other group minus the reference group of its own data, per test image, with an interval."""
    groups = _groups(runs)
    if not any((m, k) == reference for _, m, k in groups):
        raise DataError(
            f"--reference {reference[0]}:{reference[1]}: no such runs among those given; choose one of "
            f"{', '.join(sorted({f'{m}:{k}' for _, m, k in groups}))}"
        )
    rows = []
    for group, members in groups.items():
        data = group[0]
        if group[1:] == reference:
            continue
        ref_runs = groups.get((data, *reference))
        if ref_runs is None:
            rows.append(_note_row(group, reference, "—", f"no {reference[0]}:{reference[1]} runs on {data}"))
            continue
        for split in dict.fromkeys([*ref_runs[0].splits, *members[0].splits]):
            if split not in ref_runs[0].splits or split not in members[0].splits:
                rows.append(_note_row(group, reference, split, "the split was scored for one group only"))
                continue
            rows.append(_difference_row(group, reference, split, members, ref_runs))
    return rows


def build_report(folders: list[Path], reference: str | None = None) -> dict[str, Any]:
    """The report of ``folders``; runs that cannot be read are listed under ``left_out``."""
    if not folders:
        raise DataError("give at least one run folder: microaunet report runs/NAME-s0 runs/NAME-s1 ...")
    runs, left_out = read_runs(folders)
    if not runs:
        raise DataError(
            "none of the run folders could be read:\n" + "\n".join(f"{x['reason']}" for x in left_out)
        )
    ref = parse_reference(reference, runs) if reference else default_reference(runs)
    differences = paired_differences(runs, ref) if ref is not None else []
    return {
        "runs": [
            {
                "folder": str(r.folder),
                "dataset": r.data,
                "model": r.model,
                "kind": r.kind,
                "seed": r.seed,
                "source": r.source,
            }
            for r in runs
        ],
        "left_out": left_out,
        "groups": group_table(runs),
        "reference": None if ref is None else {"model": ref[0], "kind": ref[1]},
        "differences": differences,
        "method": {
            "spread": "mean ± sample sd over runs (seeds)",
            "difference": f"mean per-image difference over the images every run scored, against the "
            f"reference runs of the same data; {CONFIDENCE:.0%} Student t interval whose variance adds "
            f"the spread of the runs' means over seeds (per-seed paired differences when both groups "
            f"ran the same seeds) and the spread over images, with Welch-Satterthwaite degrees of "
            f"freedom; with one seed it is over images only and says so",
        },
    }


def _fmt(stat: dict[str, Any]) -> str:
    if stat["sd"] is None or math.isnan(stat["sd"]):
        return f"{stat['mean']:.4f}"
    return f"{stat['mean']:.4f} ± {stat['sd']:.4f}"


def format_difference(d: dict[str, Any]) -> str:
    """``+0.0230 [-0.0150, +0.0600] (t, 3 seeds paired)``: the seed count always beside the interval."""
    low, high = d["ci95"]
    if math.isnan(low):
        return f"{d['difference']:+.4f} (no interval: {d['label']})"
    return f"{d['difference']:+.4f} [{low:+.4f}, {high:+.4f}] ({d['label']})"


def to_markdown(report: dict[str, Any]) -> str:
    lines = []
    for split in dict.fromkeys(row["split"] for row in report["groups"]):
        rows = [r for r in report["groups"] if r["split"] == split]
        lines += [
            f"### {split}",
            "",
            "| data | network | kind | runs | resolution | "
            + " | ".join(label for *_, label in METRICS)
            + " |",
            "| --- | --- | --- | ---: | --- | " + " | ".join("---:" for _ in METRICS) + " |",
        ]
        for r in rows:
            values = [_fmt(r["metrics"][f"{s}.{k}"]) for s, k, _ in METRICS]
            cells = [r["dataset"], r["model"], r["kind"], str(r["runs"]), r["resolution"], *values]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if report["differences"]:
        lines += [
            f"### Paired difference against {report['differences'][0]['reference']}, per test image",
            "",
            "| data | network | kind | split | images | ΔmDice [95% CI] | ΔmIoU [95% CI] |",
            "| --- | --- | --- | --- | ---: | ---: | ---: |",
        ]
        for d in report["differences"]:
            if d.get("note"):
                cells = [d["note"], "—"]
            else:
                cells = [format_difference(d[k]) for k, _ in PAIRED]
            images = str(d.get("n_images", "—"))
            lines.append(
                f"| {d['dataset']} | {d['model']} | {d['kind']} | {d['split']} | {images} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    for x in report.get("left_out", []):
        lines.append(f"Left out: {x['folder']}: {x['reason']}")
    if report.get("left_out"):
        lines.append("")
    lines.append(f"Mean ± sd over runs (seeds). {report['method']['difference'].capitalize()}.")
    return "\n".join(lines) + "\n"
