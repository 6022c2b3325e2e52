"""Which data set folders a `prepare-data` run reads: one layout per part of the data set."""

from __future__ import annotations

import logging
from pathlib import Path

from microaunet_cli.data.layouts import Layout, detect_layout, find_layouts
from microaunet_cli.data.settings import PrepareSettings
from microaunet_cli.data.synthetic import generate_synthetic
from microaunet_cli.datasets import dataset_spec
from microaunet_cli.errors import DataError

log = logging.getLogger(__name__)


def gather_sources(settings: PrepareSettings) -> dict[str, Layout]:
    """Part name -> layout: {"kvasir": ...}, {"cvc": ...}, {"synthetic": ...} or both real parts."""
    if settings.dataset == "synthetic":
        raw = settings.src if settings.src is not None else settings.resolved_out() / "raw"
        generate_synthetic(raw, settings.synthetic_count, settings.seed)
        return {"synthetic": _announce(detect_layout(raw))}
    if settings.dataset == "polyp-mix":
        return {family: _announce(layout) for family, layout in _mix_parts(settings).items()}
    if settings.src is None:
        raise DataError(
            f"--src is required for --dataset {settings.dataset}: give the folder you downloaded "
            f"{dataset_spec(settings.dataset).title} to."
        )
    layout = detect_layout(settings.src)
    _check_family(layout, settings.dataset)
    return {settings.dataset: _announce(layout)}


def _mix_parts(settings: PrepareSettings) -> dict[str, Layout]:
    explicit = {part: getattr(settings, f"{part}_src") for part in dataset_spec("polyp-mix").parts}
    found: dict[str, list[Layout]] = {part: [] for part in explicit}
    if any(v is None for v in explicit.values()):
        if settings.src is None:
            raise DataError(
                "--dataset polyp-mix needs --src: the folder holding both Kvasir-SEG and "
                "CVC-ClinicDB (or set kvasir_src and cvc_src)."
            )
        for layout in find_layouts(settings.src):
            found[layout.family].append(layout)
    parts = {}
    for family, path in explicit.items():
        if path is not None:
            parts[family] = detect_layout(path)
            _check_family(parts[family], family)
        else:
            parts[family] = _pick(found[family], family, settings.src)
    return parts


def _pick(candidates: list[Layout], family: str, src: Path | None) -> Layout:
    if not candidates:
        title = dataset_spec(family).title
        raise DataError(
            f"{src}: no {title} folder found inside; polyp-mix needs both data "
            f"sets side by side under --src, or set {family}_src=FOLDER."
        )
    # The full release beats a sample of it (CVC-ClinicDB next to a few TIF frames, say).
    best = max(candidates, key=lambda layout: len(layout.samples))
    for other in candidates:
        if other is not best:
            log.warning(
                "ignoring %s (%d images) in favour of %s (%d); set %s_src to choose",
                other.root,
                len(other.samples),
                best.root,
                len(best.samples),
                family,
            )
    return best


def _check_family(layout: Layout, dataset: str) -> None:
    if layout.family != dataset:
        title = dataset_spec(layout.family).title
        raise DataError(
            f"{layout.root}: found the {layout.name} layout ({title}) "
            f"but --dataset is {dataset}; pass --dataset {layout.family} or the right --src."
        )


def _announce(layout: Layout) -> Layout:
    log.info("found the %s layout at %s: %d image/mask pairs", layout.name, layout.root, len(layout.samples))
    return layout
