"""Reading the runs ``microaunet report`` summarises: each run folder's test scores, per image and
summarised, with its network, training kind, seed, data set and size (``RunScores``). A folder that
cannot be read is a ``DataError`` naming the file and the fix; ``read_runs`` lists those and goes on.

A network is its registered name and its width: when the runs given hold one name at different
parameter counts (a ``malunet`` trained with a wider ``model.c_list``, say), each width is labelled
``NAME[PARAMS]`` wherever the report names it, so different networks are never pooled as seeds of one.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from microaunet_cli.errors import DataError
from microaunet_cli.evaluation.scoring import TEST_CASES

log = logging.getLogger(__name__)

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
    params: int | None = None  # the network's parameter count, when the summary records it
    teacher_params: int | None = None

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


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


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
    teacher = summary.get("teacher") if isinstance(summary.get("teacher"), dict) else {}
    teacher_model = teacher.get("model")
    base = {
        "folder": folder,
        "model": summary["model"],
        "kind": _training(summary),
        "seed": _seed(folder),
        "teacher_model": teacher_model,
        "data": _data(summary),
        "params": _count(summary.get("params")),
        "teacher_params": _count(teacher.get("params")),
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
    return label_widths(runs), left_out


def label_widths(runs: list[RunScores]) -> list[RunScores]:
    """Runs whose network name comes at more than one parameter count among ``runs`` (their own, or
    their teacher's) are relabelled ``NAME[PARAMS]``, the students' teacher names too."""
    counts: dict[str, set[int]] = {}
    for r in runs:
        for name, params in ((r.model, r.params), (r.teacher_model, r.teacher_params)):
            if name is not None and params is not None:
                counts.setdefault(name, set()).add(params)
    widths = {name for name, seen in counts.items() if len(seen) > 1}

    def label(name: str | None, params: int | None) -> str | None:
        return f"{name}[{params}]" if name in widths and params is not None else name

    for r in runs:
        r.model, r.teacher_model = label(r.model, r.params), label(r.teacher_model, r.teacher_params)
    return runs
