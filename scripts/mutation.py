"""Mutation testing of the core modules with mutmut, each module against the tests that guard it.

mutmut copies the package into a ``mutants/`` folder beside the ``pyproject.toml`` it reads, so every
group below gets a folder of its own under ``.mutation/<group>/``: links to the package and the tests,
and a ``pyproject.toml`` whose ``[tool.mutmut]`` names the group's files and test files only. Within a
group mutmut runs, for each mutant, just the tests that call the mutated function, so a mutant costs
seconds of tests, not the whole suite.

Usage (docs/mutation.md)::

    scripts/mutation.sh                    # every group, from scratch
    scripts/mutation.sh metrics losses     # some groups
    scripts/mutation.sh --again metrics    # rerun only the mutants that were not killed last time
    scripts/mutation.sh --report           # print the scores of the last runs, run nothing

The score counts a mutant as killed when a test failed or the mutant crashed the interpreter; a
timeout counts as not killed until a rerun (``--again``) settles it. Survivors listed in
``scripts/mutation_equivalent.txt`` are judged equivalent (no test can tell them from the original)
and are left out of the non-equivalent score.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".mutation"
EQUIVALENT = REPO / "scripts" / "mutation_equivalent.txt"
PKG = "microaunet_cli"


@dataclass(frozen=True)
class Group:
    files: tuple[str, ...]  # package files to mutate, relative to the repository
    tests: tuple[str, ...]  # the test files that guard them
    functions: tuple[str, ...] = ()  # mutate only these functions (mutmut mangled-name globs)


# Each core module and the tests that guard it. Keep `only_mutate` in pyproject.toml's [tool.mutmut]
# the union of these files (checked below), so a plain `mutmut run` covers the same modules.
GROUPS: dict[str, Group] = {
    "metrics": Group(
        (f"{PKG}/evaluation/metrics.py",), ("tests/test_metrics.py", "tests/test_metrics_mutants.py")
    ),
    "resize": Group(
        (f"{PKG}/inference/resize.py",), ("tests/test_resize_mutants.py", "tests/test_original_resolution.py")
    ),
    "losses": Group(
        (f"{PKG}/losses/distill.py", f"{PKG}/losses/segmentation.py", f"{PKG}/losses/logistic.py"),
        (
            "tests/test_losses.py",
            "tests/test_logistic.py",
            "tests/test_losses_mutants.py",
            "tests/test_structure_loss.py",
            "tests/test_infonce_heads.py",
        ),
    ),
    # the flips, warp and jitter (multiscale_side and resize_batch are in "recipe")
    "augment": Group(
        (f"{PKG}/training/augment.py",),
        ("tests/test_augment_mutants.py",),
        functions=("*x__coin__*", "*x__uniform__*", "*x_affine_params__*", "*x_augment_batch__*"),
    ),
    # the training-recipe options: multi-scale batches and the weight average (EMA)
    "recipe": Group(
        (f"{PKG}/training/augment.py", f"{PKG}/training/ema.py"),
        ("tests/test_recipe.py",),
        functions=("*x_multiscale_side__mutmut_*", "*x_resize_batch__mutmut_*", "*WeightAverageǁ*"),
    ),
    "identity": Group((f"{PKG}/data/identity.py",), ("tests/test_data_identity_mutants.py",)),
    "decode": Group(
        (f"{PKG}/data/decode.py",),
        ("tests/test_data_decode_mutants.py", "tests/test_data_prepare.py"),
    ),
    "scoring": Group(
        (f"{PKG}/evaluation/scoring.py",),
        ("tests/test_original_resolution.py", "tests/test_scoring_mutants.py"),
    ),
    # the teacher's CPU training paths (folded GroupNorm backward, 1x1 convs as matrix products)
    "cpu_training": Group((f"{PKG}/models/cpu_training.py",), ("tests/test_cpu_training.py",)),
    "distillation": Group(
        (f"{PKG}/training/distillation.py",),
        ("tests/test_losses.py", "tests/test_objectives.py", "tests/test_distillation_mutants.py"),
    ),
    "optim": Group(
        (f"{PKG}/training/optim.py",),
        ("tests/test_optim_mutants.py",),
        # resume: the replanning and the continuation of the cosine it sets up
        functions=(
            "*x_replan_schedule__mutmut_*",
            "*CosineFactorǁcontinue_to__mutmut_*",
            "*CosineFactorǁ__call____mutmut_*",
        ),
    ),
    "reparam": Group(
        (f"{PKG}/models/reparam.py",), ("tests/test_microaunet_rt.py", "tests/test_student_mutants.py")
    ),
    "student": Group(
        (f"{PKG}/models/microaunet_rt.py",),
        ("tests/test_models.py", "tests/test_microaunet_rt.py", "tests/test_student_mutants.py"),
    ),
    "int8": Group(
        (f"{PKG}/export/int8.py",),
        ("tests/test_int8_gate_mutants.py",),
        functions=(
            "*x_require_agreement__mutmut_*",
            "*x_mask_agreement__mutmut_*",
            "*x__dice_per_image__mutmut_*",
        ),
    ),
    # video frame selection: which frames are read, predicted and batched together
    "video": Group(
        (f"{PKG}/inference/video/stages.py", f"{PKG}/inference/video/pipeline.py"),
        ("tests/test_video_frames_mutants.py",),
        functions=(
            "*Readerǁ_read__mutmut_*",
            "*Readerǁrun__mutmut_*",
            "*x_put_unless_stopped__mutmut_*",
            "*x__batches__mutmut_*",
        ),
    ),
    "report": Group(
        (f"{PKG}/evaluation/report.py",),
        ("tests/test_report.py", "tests/test_report_mutants.py"),
        # pairing: groups, references, seeds, images, and the per-group table
        functions=tuple(
            f"*x_{name}__mutmut_*"
            for name in (
                "_groups",
                "_by_seed",
                "_score_matrix",
                "_paired_by_seed",
                "default_reference",
                "parse_reference",
                "_difference_row",
                "paired_differences",
                "group_table",
                "_mean_sd",
                "_metric",
            )
        )
        + ("*RunScoresǁgroup__mutmut_*",),
    ),
    # the interval of a mean difference that report prints (t quantiles, seed and image variance parts);
    # test_report.py's coverage simulation guards it too, but is too slow to run for each mutant
    "intervals": Group((f"{PKG}/evaluation/intervals.py",), ("tests/test_intervals_mutants.py",)),
    # shipped weights by name, and flip test-time augmentation around any predictor
    "weights": Group(
        (f"{PKG}/weights/__init__.py", f"{PKG}/inference/runners.py"),
        ("tests/test_weights_mutants.py", "tests/test_tta.py"),
        functions=(
            "*weights.x_*",
            "*FlipAveragedǁ*",
            "*x_with_tta__mutmut_*",
        ),
    ),
}

# A timeout is not counted as a kill: beside training runs a niced test can outlast mutmut's wall-clock
# limit without looping; --again reruns timeouts with the survivors.
KILLED = {"killed", "segfault", "caught by type check"}


def _toml_list(items) -> str:
    return "[" + ", ".join(json.dumps(str(i)) for i in items) + "]"


def _mutmut_table(text: str) -> tuple[str, str]:
    """pyproject.toml split into (everything but [tool.mutmut], the [tool.mutmut] table)."""
    match = re.search(r"^\[tool\.mutmut\]\n(?:(?!^\[).*\n?)*", text, flags=re.MULTILINE)
    if match is None:
        sys.exit("pyproject.toml has no [tool.mutmut] table: scripts/mutation.py reads its shared settings")
    return text[: match.start()] + text[match.end() :], match.group(0)


def _check_union(table: str) -> None:
    listed = set(tomllib.loads(table)["tool"]["mutmut"].get("only_mutate", []))
    missing = sorted({f for g in GROUPS.values() for f in g.files} - listed)
    if missing:
        sys.exit(f"pyproject.toml [tool.mutmut] only_mutate lacks {missing}: add them, or drop them here")


def _prepare(name: str, group: Group, keep: bool = False) -> Path:
    """``.mutation/<name>/`` whose pyproject.toml points mutmut at this group only: fresh, or with
    ``keep`` the last run's mutants and verdicts kept and only the settings written again."""
    folder = WORK / name
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for link in (PKG, "tests"):
            (folder / link).symlink_to(REPO / link, target_is_directory=True)
    rest, table = _mutmut_table((REPO / "pyproject.toml").read_text())
    _check_union(table)
    shared = [
        line
        for line in table.splitlines()[1:]
        if not line.startswith(("only_mutate", "pytest_add_cli_args_test_selection", " ", '"', "]"))
    ]
    tests = [t for t in group.tests if (REPO / t).is_file()]
    body = "\n".join(
        ["[tool.mutmut]", *shared]
        + [f"only_mutate = {_toml_list(group.files)}"]
        + [f"pytest_add_cli_args_test_selection = {_toml_list(tests)}"]
    )
    (folder / "pyproject.toml").write_text(rest.rstrip() + "\n\n" + body + "\n")
    return folder


def _exit_codes(folder: Path, group: Group) -> dict[str, int | None]:
    """``mutant name -> mutmut's exit code`` (only the group's functions, where it names some)."""
    out: dict[str, int | None] = {}
    for path in group.files:
        meta = folder / "mutants" / (path + ".meta")
        if meta.is_file():
            for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
                if not group.functions or any(fnmatch(key, f) for f in group.functions):
                    out[key] = code
    return out


def _results(folder: Path, group: Group) -> dict[str, str]:
    """``mutant name -> status`` from mutmut's files."""
    from mutmut.stats import status_by_exit_code  # mutmut's own exit-code table

    return {key: status_by_exit_code[code] for key, code in _exit_codes(folder, group).items()}


def _restore_verdicts(folder: Path, group: Group, before: dict[str, int | None]) -> None:
    """Put back the kills that mutmut forgot when the test selection changed (it resets every verdict
    then): tests were only added since, so a mutant killed before is killed still."""
    from mutmut.stats import status_by_exit_code

    for path in group.files:
        meta = folder / "mutants" / (path + ".meta")
        if not meta.is_file():
            continue
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for key, code in before.items():
            if key in codes and codes[key] is None and status_by_exit_code[code] in KILLED:
                codes[key] = code
        meta.write_text(json.dumps(data, indent=4))


SOURCES = "sources.json"  # in a group's folder: the SHA-256 of each file it mutated, at its fresh run


def _sources(group: Group) -> dict[str, str]:
    return {f: hashlib.sha256((REPO / f).read_bytes()).hexdigest() for f in group.files}


def _recorded_sources(folder: Path) -> dict[str, str] | None:
    path = folder / SOURCES
    return json.loads(path.read_text()) if path.is_file() else None


def _equivalent() -> dict[str, str]:
    """``mutant name -> reason`` from scripts/mutation_equivalent.txt (``name  # reason`` lines)."""
    if not EQUIVALENT.is_file():
        return {}
    rows = {}
    for line in EQUIVALENT.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition("#")
            rows[name.strip()] = reason.strip()
    return rows


def _mutmut(folder: Path, names: list[str], children: int) -> int:
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *names]
    return subprocess.call(cmd, cwd=folder)


COLUMNS = ("mutants", "checked", "killed", "timeout", "equivalent", "survived")


def _row(name: str, counts: Counter) -> str:
    den = counts["checked"] - counts["equivalent"]
    score = f"{counts['killed']}/{den} = {counts['killed'] / den:.1%}"
    return f"| {name} | {' | '.join(str(counts[c]) for c in COLUMNS)} | {score} |"


def report(names: list[str]) -> int:
    """A table of the groups' last runs (Markdown, as docs/mutation.md shows it), then the survivors
    not judged equivalent. Returns 1 where those and the timeouts are more than a tenth of the
    non-equivalent mutants checked."""
    equivalent = _equivalent()
    print(
        "\n| group | mutants | checked | killed | timed out | equivalent | survived "
        "| killed / (checked − equivalent) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    totals: Counter = Counter()
    survivors = []
    for name in names:
        res = _results(WORK / name, GROUPS[name])
        counts = Counter(mutants=len(res))
        for key, status in res.items():
            if status in KILLED:
                counts["killed"] += 1
            elif status == "not checked":
                continue
            elif key in equivalent:
                counts["equivalent"] += 1
            else:
                counts["timeout" if status == "timeout" else "survived"] += 1
                survivors.append(f"  {key}: {status}")
            counts["checked"] += 1
        if counts["checked"] <= counts["equivalent"]:
            print(f"| {name} | {len(res) or '—'} | not run yet (scripts/mutation.sh {name}) | | | | | |")
            continue
        totals.update(counts)
        print(_row(name, counts))
    den = totals["checked"] - totals["equivalent"]
    if den > 0:
        print(_row("all run", totals))
    if survivors:
        print("\nsurvivors not judged equivalent (see one: cd .mutation/<group> && mutmut show NAME):")
        print("\n".join(survivors))
    return 1 if den > 0 and den - totals["killed"] > 0.1 * den else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("groups", nargs="*", help=f"groups to run (default: all): {', '.join(GROUPS)}")
    parser.add_argument("--again", action="store_true", help="rerun only the mutants not killed last time")
    parser.add_argument("--report", action="store_true", help="print the last runs' scores, run nothing")
    parser.add_argument("--children", type=int, default=2, help="mutants tested at once (default 2)")
    args = parser.parse_args()
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; the groups are: {', '.join(GROUPS)}")
    names = args.groups or list(GROUPS)
    if args.report:
        return report(names)
    for name in names:
        group = GROUPS[name]
        start = time.monotonic()
        again = args.again and (WORK / name / "mutants").is_dir()
        if again and _sources(group) != _recorded_sources(WORK / name):
            # mutmut numbers mutants within a function: after a source change a kept verdict could
            # land on a different mutant of the same name, so only a fresh run scores it honestly.
            print(f"== {name}: {', '.join(group.files)} changed since its last run: running it afresh")
            again = False
        if again:
            folder = WORK / name
            before = _exit_codes(folder, group)
            todo = [k for k, s in _results(folder, group).items() if s not in KILLED]
            # new test files join the selection; mutmut copies tests/ again on every run
            _prepare(name, group, keep=True)
            print(f"== {name}: rerunning {len(todo)} mutants not killed last time")
            rc = _mutmut(folder, todo, args.children) if todo else 0
            _restore_verdicts(folder, group, before)
        else:
            if not any((REPO / t).is_file() for t in group.tests):
                # pytest given no file would run the whole suite under every mutant
                print(f"== {name}: none of its test files exists ({', '.join(group.tests)}); skipped")
                continue
            folder = _prepare(name, group)
            (folder / SOURCES).write_text(json.dumps(_sources(group), indent=1))
            print(f"== {name}: {', '.join(group.files)} against {', '.join(group.tests)}")
            rc = _mutmut(folder, list(group.functions), args.children)
        print(f"== {name}: mutmut exited {rc} after {time.monotonic() - start:.0f} s")
    return report(names)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
