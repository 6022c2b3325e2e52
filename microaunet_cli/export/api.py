"""``export_checkpoint``: checkpoint -> exported file + parity check + sidecar JSON."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from microaunet_cli.checkpoints import load_trained
from microaunet_cli.export.errors import ExportError, ParityError
from microaunet_cli.export.formats import Written, get_format
from microaunet_cli.export.parity import Parity, compare, require_parity
from microaunet_cli.export.samples import image_like_batch
from microaunet_cli.export.settings import ExportSettings
from microaunet_cli.export.sidecar import build_sidecar, sidecar_path
from microaunet_cli.fileio import write_json_atomic

log = logging.getLogger(__name__)

# Traced at batch 2: a batch of 1 lets tracers fold the batch axis into a constant.
TRACE_BATCH = 2


@dataclass(frozen=True)
class ExportResult:
    out: Path
    sidecar: Path
    format: str
    model: str
    input_size: tuple[int, int]
    written: Written
    parity: list[Parity]


def default_out(ckpt: Path, suffix: str) -> Path:
    return ckpt.with_name(ckpt.stem + suffix)


def _output_path(settings: ExportSettings, ckpt: Path, suffix: str) -> Path:
    out = settings.out or default_out(ckpt, suffix)
    if out.resolve() == ckpt.resolve():
        raise ExportError(f"--out {out} is the checkpoint itself; choose another output path")
    return out


def export_checkpoint(settings: ExportSettings) -> ExportResult:
    if settings.ckpt is None:
        raise ExportError("no checkpoint given: pass --ckpt PATH (a best.pt or last.pt of a training run)")
    ckpt = settings.ckpt
    trained = load_trained(ckpt, "cpu")
    model, run, mean, std = trained.network, trained.settings, trained.mean, trained.std
    side = settings.size or trained.size
    size = (side, side)
    spec = get_format(settings.format)
    out = _output_path(settings, ckpt, spec.suffix)

    log.info("exporting %s (%s) to %s at %d×%d", ckpt, run.model.name, out, *size)
    written = spec.write(model, image_like_batch(TRACE_BATCH, size, mean, std), out,
                         settings.opset, settings.exporter)
    parity = [compare(model, spec.load(out), image_like_batch(b, size, mean, std, seed=1 + i))
              for i, b in enumerate(settings.check_batches)]
    for p in parity:
        log.info("parity at batch %d: max |Δp| %.2e, Dice %.4f", p.batch, p.max_abs_diff, p.dice)
    try:
        require_parity(parity, settings.atol, settings.min_dice, f"{settings.format} file {out}")
    except ParityError:
        out.unlink(missing_ok=True)  # a file that computes something else must not be picked up later
        raise

    sidecar = build_sidecar(fmt=settings.format, out=out, model_name=run.model.name, size=size,
                            channels=run.model.input_channels, mean=mean, std=std, written=written,
                            parity=parity, checkpoint=ckpt, trained=trained)
    write_json_atomic(sidecar_path(out), sidecar)
    return ExportResult(out, sidecar_path(out), settings.format, run.model.name, size, written, parity)
