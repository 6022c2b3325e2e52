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
from microaunet_cli.evaluation.intervals import CONFIDENCE, difference_interval
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
KINDS = ("supervised", "distilled")
REREAD = "give the folder of a finished train-teacher or distill run"


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
    data: str = "unknown data"  # the data set it trained and was tested on, and its size

    @property
    def group(self) -> tuple[str, str, str]:
        return self.data, self.model, self.kind


def _read_cases(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    cases: dict[str, dict[str, dict[str, float]]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    scores = {"dice": float(row["dice"]), "iou": float(row["iou"])}
                    cases.setdefault(row["split"], {})[row["name"]] = scores
                except (KeyError, TypeError, ValueError):
                    raise DataError(
                        f"{path}, line {line}: not a per-image score row (split, name, dice, iou); "
                        f"the file is damaged: rerun `microaunet evaluate` on the run's best.pt"
                    ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); rerun `microaunet evaluate`") from None
    return cases


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{path}: not readable JSON ({exc}); the run may have been stopped while writing it. "
            f"{REREAD}, or rerun `microaunet evaluate` on its best.pt"
        ) from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: holds no summary object; {REREAD}")
    return value


def _seed(folder: Path) -> int | None:
    config = folder / "config.yaml"
    if not config.is_file():
        return None
    try:
        values = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        seed = (values.get("train") or {}).get("seed")
    except (yaml.YAMLError, AttributeError, OSError, UnicodeDecodeError):
        log.warning("%s: not a readable settings file; the run's seed is taken as unknown", config)
        return None
    return seed if isinstance(seed, int) else None


# Summaries written before roles and training were recorded apart held one "kind".
_OLD_KIND_TRAINING = {"teacher": "supervised", "student": "distilled"}


def _training(summary: dict[str, Any]) -> str:
    """How the run trained its network: supervised (train-teacher) or distilled."""
    return summary.get("training") or _OLD_KIND_TRAINING.get(summary.get("kind"), "supervised")


def _data(summary: dict[str, Any]) -> str:
    dataset = summary.get("dataset") or "unknown data"
    return f"{dataset} {summary['size']} px" if summary.get("size") else str(dataset)


def read_run(folder: Path) -> RunScores:
    """The test scores of a run folder (see the module docstring for where they are read from)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such run folder; {REREAD}")
    path = folder / "summary.json"
    if not path.is_file():
        raise DataError(f"{folder}: no summary.json; {REREAD}")
    summary = _read_json(path)
    if not isinstance(summary.get("model"), str):
        raise DataError(f"{path}: names no model; {REREAD}")
    teacher_model = (summary.get("teacher") or {}).get("model")
    base = {
        "folder": folder,
        "model": summary["model"],
        "kind": _training(summary),
        "seed": _seed(folder),
        "teacher_model": teacher_model,
        "data": _data(summary),
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
        scored = _read_json(evaluated / "summary.json")
        if not isinstance(scored.get("splits"), dict):
            raise DataError(
                f"{evaluated / 'summary.json'}: holds no split scores; rerun `microaunet evaluate`"
            )
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


def read_runs(folders: list[Path]) -> tuple[list[RunScores], list[dict[str, str]]]:
    """Every readable run, and the folders left out with the reason (a folder given twice counts once)."""
    runs: list[RunScores] = []
    left_out: list[dict[str, str]] = []
    seen: set[Path] = set()
    for folder in map(Path, folders):
        if folder.resolve() in seen:
            log.warning("%s: given twice; counted once", folder)
            continue
        seen.add(folder.resolve())
        try:
            runs.append(read_run(folder))
        except DataError as exc:
            log.error("left out of the report: %s", exc)
            left_out.append({"folder": str(folder), "reason": str(exc)})
    return runs, left_out


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
            resolutions = sorted({str(m.splits[split].get("resolution", "")) for m in members})
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
