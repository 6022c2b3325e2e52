"""`prepare-data`: read a data set as distributed, split it, and store fixed-size arrays with a manifest.

Order of work, chosen so that a killed run is never mistaken for a finished one: find the layout,
plan the splits (cheap), stop if the manifest says this exact preparation is already there, remove
the old manifest, write each split's arrays atomically, write the new manifest last.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microaunet_cli.data.decode import decode_samples, worker_count
from microaunet_cli.data.layouts import Layout, Sample
from microaunet_cli.data.manifest import FORMAT_VERSION, MANIFEST, read_manifest, split_files_intact
from microaunet_cli.data.original_masks import DATA_FILE as ORIGINALS_DATA
from microaunet_cli.data.original_masks import INDEX_FILE as ORIGINALS_INDEX
from microaunet_cli.data.settings import PrepareSettings
from microaunet_cli.data.sources import gather_sources
from microaunet_cli.data.splits import SidePlan, plan_sides
from microaunet_cli.data.store import (
    ChannelStats,
    SplitRecord,
    bad_files_error,
    share_like_normal_file,
    write_split,
)
from microaunet_cli.errors import DataError
from microaunet_cli.fileio import write_json_atomic
from microaunet_cli.progress import progress
from microaunet_cli.version import __version__

log = logging.getLogger(__name__)


@dataclass
class SplitPlan:
    """Samples of every output split, in order; ``folds`` gives the fold of each train sample (kfold)."""

    splits: dict[str, list[Sample]]
    test_splits: list[str]
    folds: list[int] | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class PrepareResult:
    out: Path
    manifest: dict
    unchanged: bool  # True when the output was already up to date and nothing was written
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        return {name: info["count"] for name, info in self.manifest["splits"].items()}

    @property
    def skipped(self) -> list[dict]:
        return self.manifest.get("skipped", [])


def prepare_dataset(settings: PrepareSettings) -> PrepareResult:
    """Prepare ``settings.dataset`` into ``settings.resolved_out()``; a no-op when already up to date."""
    start = time.monotonic()
    out = settings.resolved_out()
    sources = gather_sources(settings)
    _check_out(
        out, [settings.src, settings.kvasir_src, settings.cvc_src, *(s.root for s in sources.values())]
    )
    plan = plan_splits(sources, settings)
    if plan.problems and not settings.skip_bad:
        raise bad_files_error(plan.problems)
    fingerprint = _fingerprint(settings, sources, plan)
    previous = read_manifest(out)
    if (
        previous is not None
        and previous.get("fingerprint") == fingerprint
        and not settings.force
        and split_files_intact(out, previous)
    ):
        log.info("%s is up to date with these inputs and options: nothing to do (--force to redo)", out)
        return PrepareResult(out, previous, unchanged=True, seconds=time.monotonic() - start)
    (out / MANIFEST).unlink(missing_ok=True)  # from here until the end, the folder is incomplete
    manifest = _write_all(out, plan, settings, sources, fingerprint)
    _remove_stale_splits(out, previous, manifest)
    write_json_atomic(out / MANIFEST, manifest)
    share_like_normal_file(out / MANIFEST)
    seconds = time.monotonic() - start
    log.info(
        "prepared %s in %.1f s: %s",
        out,
        seconds,
        ", ".join(f"{k} {v['count']}" for k, v in manifest["splits"].items()),
    )
    return PrepareResult(out, manifest, unchanged=False, seconds=seconds)


def _check_out(out: Path, inputs: list[Path | None]) -> None:
    """The output's train/ val/ test/ folders must not land inside a data set being read."""
    if any(path is not None and out.resolve() == path.resolve() for path in inputs):
        raise DataError(
            f"--out {out} is the data set folder itself; write the prepared arrays elsewhere "
            f"(the default is data/<dataset>)."
        )


def plan_splits(sources: dict[str, Layout], settings: PrepareSettings) -> SplitPlan:
    """Apply the split policy to each part and merge: one test split per part for polyp-mix."""
    policy = settings.resolved_split()
    if policy == "pranet" and "synthetic" in sources:
        raise DataError(
            "the pranet split lists name Kvasir-SEG and CVC-ClinicDB images; "
            "use --split random or kfold for the synthetic data set."
        )
    mixed = len(sources) > 1
    train: list[Sample] = []
    folds: list[int] = []
    val: list[Sample] = []
    tests: dict[str, list[Sample]] = {}
    problems: list[tuple[str, str]] = []
    for part, layout in sources.items():
        sides = plan_sides(layout, policy, settings)
        sides = _prefixed(sides, part) if mixed else sides
        train += sides.train
        folds += sides.folds or []
        val += sides.val
        tests[f"test_{part}" if mixed else "test"] = sides.test
        problems += layout.problems + (sides.missing or [])
    splits = {"train": train, "val": val, **tests}
    kfold = policy == "kfold"
    if kfold and mixed:  # keep each fold one contiguous block across the parts
        order = sorted(range(len(train)), key=lambda i: folds[i])
        splits["train"], folds = [train[i] for i in order], [folds[i] for i in order]
    splits = {name: samples for name, samples in splits.items() if samples}
    _check_plan(splits, policy)
    return SplitPlan(splits, [n for n in splits if n.startswith("test")], folds if kfold else None, problems)


def _prefixed(sides: SidePlan, part: str) -> SidePlan:
    """Names unique across parts of polyp-mix: "kvasir/<stem>", "cvc/<frame>"."""

    def rename(samples: list[Sample]) -> list[Sample]:
        return [Sample(f"{part}/{s.name}", s.image, s.mask, s.group, s.part) for s in samples]

    return SidePlan(rename(sides.train), rename(sides.val), rename(sides.test), sides.folds, sides.missing)


def _check_plan(splits: dict[str, list[Sample]], policy: str) -> None:
    if "train" not in splits:
        raise DataError(f"the {policy} split left no training images; check --src and the split options.")
    names = [s.name for samples in splits.values() for s in samples]
    if len(names) != len(set(names)):
        dupes = sorted({n for n in names if names.count(n) > 1})[:5]
        raise DataError(
            f"image names occur more than once ({', '.join(dupes)}): the pre-split folders "
            f"share file names; rename them so each image has one name."
        )


def _write_all(
    out: Path, plan: SplitPlan, settings: PrepareSettings, sources: dict[str, Layout], fingerprint: str
) -> dict:
    total = sum(len(s) for s in plan.splits.values())
    workers = worker_count(settings.workers, total)
    log.info("decoding %d pairs at %dx%d with %d process(es)", total, settings.size, settings.size, workers)
    stats = ChannelStats()
    records: dict[str, SplitRecord] = {}
    everything = [s for samples in plan.splits.values() for s in samples]
    # One decoding stream (one process pool) for all splits; each split takes its share in order.
    decoded = decode_samples(everything, settings.size, workers)
    try:
        with progress("preparing", total) as advance:
            for name, samples in plan.splits.items():
                records[name] = write_split(
                    out / name,
                    samples,
                    itertools.islice(decoded, len(samples)),
                    settings.size,
                    advance,
                    stats if name == "train" else None,
                    settings.skip_bad,
                )
    finally:
        decoded.close()  # stops the worker processes now, also on an error
    if not any(r.kept for r in records.values()) or not records["train"].kept:
        raise DataError(
            f"nothing usable was prepared from {', '.join(str(s.root) for s in sources.values())}: "
            f"every training image was left out; see the messages above."
        )
    return _manifest(plan, records, settings, sources, stats, fingerprint)


def _manifest(
    plan: SplitPlan,
    records: dict[str, SplitRecord],
    settings: PrepareSettings,
    sources: dict[str, Layout],
    stats: ChannelStats,
    fingerprint: str,
) -> dict:
    mean, std = stats.mean_std()
    skipped = [{"file": f, "reason": r} for f, r in plan.problems]
    skipped += [{"file": f, "reason": r} for rec in records.values() for f, r in rec.bad]
    splits = {
        name: {
            "count": len(rec.kept),
            "images": rec.files["images"],
            "masks": rec.files["masks"],
            "original_masks": rec.files["original_masks"],
            "names": f"{name}/names.txt",
        }
        for name, rec in records.items()
    }
    return {
        "format": FORMAT_VERSION,
        "tool_version": __version__,
        "dataset": settings.dataset,
        "layout": {part: layout.name for part, layout in sources.items()},
        "sources": {part: str(layout.root.resolve()) for part, layout in sources.items()},
        "policy": settings.resolved_split(),
        "seed": settings.seed,
        "size": settings.size,
        **_policy_options(settings),
        "kfold": _kfold_layout(records["train"], plan, stats) if plan.folds is not None else None,
        "interpolation": {
            "image": "area when shrinking, linear when enlarging",
            "mask": "threshold 128, resize as 0/255 like the image, threshold 128 again",
        },
        "splits": splits,
        "test_splits": [n for n in plan.test_splits if n in records],
        "mean": mean,
        "std": std,
        "skipped": skipped,
        "fingerprint": fingerprint,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _policy_options(settings: PrepareSettings) -> dict:
    """Only the options the policy used, so the manifest never shows a fraction that played no part."""
    policy = settings.resolved_split()
    options: dict = {}
    if policy != "kfold":
        options["val_fraction"] = settings.val_fraction
    if policy in ("random", "sequence", "kfold"):
        options["test_fraction"] = settings.test_fraction
    if policy == "kfold":
        options["folds"] = settings.folds
    if settings.dataset == "synthetic":
        options["synthetic_count"] = settings.synthetic_count
    return options


def _kfold_layout(train: SplitRecord, plan: SplitPlan, stats: ChannelStats) -> dict:
    """[start, end) rows of each fold in train/, computed on the kept samples after any skipping, and
    the normalisation of each fold's training side (the other folds), so no run sees its held-out fold."""
    fold_of = {s.name: f for s, f in zip(plan.splits["train"], plan.folds or [])}
    folds = np.array([fold_of[s.name] for s in train.kept])
    k = max(fold_of.values()) + 1
    ranges, fold_stats = [], []
    for fold in range(k):
        rows = np.flatnonzero(folds == fold)
        ranges.append([int(rows[0]), int(rows[-1]) + 1] if len(rows) else [0, 0])
        mean, std = stats.mean_std(np.flatnonzero(folds != fold))
        fold_stats.append({"mean": mean, "std": std})
    return {"k": k, "ranges": ranges, "normalization": fold_stats}


def _fingerprint(settings: PrepareSettings, sources: dict[str, Layout], plan: SplitPlan) -> str:
    """Hash of every option that changes the output and of each input file's size and mtime."""
    options = settings.model_dump(mode="json", exclude={"workers", "force", "out"})
    files = []
    for samples in plan.splits.values():
        for s in samples:
            for path in (s.image, s.mask):
                st = path.stat()
                files.append([s.name, str(path.resolve()), st.st_size, st.st_mtime_ns])
    payload = {
        "format": FORMAT_VERSION,
        "options": options,
        "policy": settings.resolved_split(),
        "layouts": {p: lay.name for p, lay in sources.items()},
        "files": files,
        "folds": plan.folds,
        # Folders prepared before original masks were kept get them on the next run.
        "original_masks": True,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _remove_stale_splits(out: Path, previous: dict | None, manifest: dict) -> None:
    """Split folders of an earlier preparation that this one no longer has (only ones we wrote)."""
    if previous is None:
        return
    for name in set(previous.get("splits", {})) - set(manifest["splits"]):
        folder = out / name
        ours = {"images.npy", "masks.npy", "names.txt", ORIGINALS_DATA, ORIGINALS_INDEX}
        if folder.is_dir() and {p.name for p in folder.iterdir()} <= ours:
            shutil.rmtree(folder)
