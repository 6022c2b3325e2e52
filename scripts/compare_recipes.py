"""Recipe candidates against a reference recipe, on the runs' own test scores: validation mDice (what
a choice may rest on), test mDice per test set, and the paired per-image difference to the reference
with the interval ``report`` uses (Student t over seeds and images; over images only for one seed).

    python scripts/compare_recipes.py --reference base=runs/s0,runs/s1 structure=runs/st-s0,runs/st-s1

Runs of a group are paired with the reference's by position (give seeds in the same order).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

import numpy as np

from microaunet_cli.evaluation.intervals import difference_interval


def _group(text: str) -> tuple[str, list[Path]]:
    label, _, runs = text.partition("=")
    return label, [Path(r) for r in runs.split(",") if r]


def _cases(run: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with open(run / "test_per_case.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["split"], {})[row["name"]] = float(row["dice"])
    return out


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def _mean_sd(values: list[float]) -> str:
    sd = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.3f}{sd}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="LABEL=RUN[,RUN...]")
    ap.add_argument("groups", nargs="+", help="LABEL=RUN[,RUN...]")
    args = ap.parse_args()
    ref_label, ref_runs = _group(args.reference)
    ref_cases = [_cases(r) for r in ref_runs]
    splits = sorted(ref_cases[0])
    head = "| recipe | seeds | val mDice | " + " | ".join(
        f"{s} mDice | Δ vs {ref_label} [95% CI]" for s in splits
    )
    print(head + " |")
    print("| --- | ---: | ---: | " + " | ".join("---: | ---:" for _ in splits) + " |")
    for label, runs in [(ref_label, ref_runs)] + [_group(g) for g in args.groups]:
        summaries = [_summary(r) for r in runs]
        cases = [_cases(r) for r in runs]
        cells = [label, str(len(runs)), _mean_sd([s["best_val_mdice"] for s in summaries])]
        for split in splits:
            names = sorted(ref_cases[0][split])
            ours = np.array([[c[split][n] for n in names] for c in cases])
            theirs = np.array([[c[split][n] for n in names] for c in ref_cases])
            cells.append(_mean_sd([s["test"][split]["per_image"]["mdice"] for s in summaries]))
            if label == ref_label:
                cells.append("")
                continue
            iv = difference_interval(ours, theirs, paired=len(ours) == len(theirs))
            cells.append(f"{iv.difference:+.3f} [{iv.low:+.3f}, {iv.high:+.3f}] ({iv.label})")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
