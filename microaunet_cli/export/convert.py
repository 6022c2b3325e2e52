"""``export_checkpoint``: checkpoint -> exported file + parity check + sidecar JSON."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microaunet_cli.checkpoints import load_trained
from microaunet_cli.errors import DataError, ExportError, ParityError
from microaunet_cli.export import int8 as int8_tools
from microaunet_cli.export.formats import Written, get_format
from microaunet_cli.export.parity import Parity, compare, image_like_batch, require_parity
from microaunet_cli.export.settings import ExportSettings
from microaunet_cli.export.sidecar import build_sidecar
from microaunet_cli.fileio import write_json_atomic
from microaunet_cli.models import inference_copy
from microaunet_cli.onnx_runtime import sidecar_path

log = logging.getLogger(__name__)

# Traced at batch 2: a batch of 1 lets tracers fold the batch axis into a constant.
TRACE_BATCH = 2


@dataclass(frozen=True)
class Int8Result:
    out: Path
    sidecar: Path
    calibration_images: int
    agreement: int8_tools.Int8Agreement


@dataclass(frozen=True)
class ExportResult:
    out: Path
    sidecar: Path
    format: str
    model: str
    input_size: tuple[int, int]
    written: Written
    parity: list[Parity]
    int8: Int8Result | None = None


def default_out(ckpt: Path, suffix: str) -> Path:
    return ckpt.with_name(ckpt.stem + suffix)


def _output_path(settings: ExportSettings, ckpt: Path, suffix: str) -> Path:
    out = settings.out or default_out(ckpt, suffix)
    if out.is_dir():
        raise ExportError(
            f"--out {out} is a folder; give the file to write, "
            f"e.g. --out {out / default_out(ckpt, suffix).name}"
        )
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
    # The file holds the folded network (BatchNorms in the convs, training branches merged); the
    # parity check compares it with the network as trained, so it covers the folding too.
    example = image_like_batch(TRACE_BATCH, size, mean, std)
    written = spec.write_from(settings, inference_copy(model), example, out)
    parity = [
        compare(model, spec.load(out), image_like_batch(b, size, mean, std, seed=1 + i))
        for i, b in enumerate(settings.check_batches)
    ]
    for p in parity:
        log.info("parity at batch %d: max |Δp| %.2e, Dice %.4f", p.batch, p.max_abs_diff, p.dice)
    try:
        require_parity(parity, settings.atol, settings.min_dice, f"{settings.format} file {out}")
    except ParityError:
        out.unlink(missing_ok=True)  # a file that computes something else must not be picked up later
        raise

    sidecar = build_sidecar(
        fmt=settings.format,
        out=out,
        model_name=run.model.name,
        size=size,
        channels=run.model.input_channels,
        mean=mean,
        std=std,
        written=written,
        parity=parity,
        checkpoint=ckpt,
        trained=trained,
    )
    write_json_atomic(sidecar_path(out), sidecar)
    quantized = _export_int8(settings, out, ckpt, trained, sidecar) if settings.int8 else None
    return ExportResult(
        out, sidecar_path(out), settings.format, run.model.name, size, written, parity, quantized
    )


def int8_path(out: Path) -> Path:
    """``best.onnx`` -> ``best.int8.onnx``."""
    return out.with_name(out.stem + ".int8" + out.suffix)


def _prepared_for_int8(settings: ExportSettings, run: Any, ckpt: Path) -> Any:
    from microaunet_cli import data
    from microaunet_cli.evaluation.evaluate import find_prepared

    folder = settings.data_dir or find_prepared(run.data.resolved_dir(), ckpt)
    try:
        prepared = data.open_prepared(folder)
    except DataError as exc:
        raise DataError(
            f"--int8 calibrates on the checkpoint's prepared training split and checks on its "
            f"validation split, but none was found: {exc}\nPass --data-dir DIR (the folder "
            f"prepare-data wrote for this checkpoint) or run prepare-data again."
        ) from None
    missing = [s for s in ("train", "val") if s not in prepared.splits]
    if missing:
        raise DataError(
            f"{folder}: --int8 needs the train and val splits; it has {', '.join(prepared.splits)}"
        )
    return prepared


def _export_int8(
    settings: ExportSettings, fp32: Path, ckpt: Path, trained: Any, fp32_sidecar: dict[str, Any]
) -> Int8Result:
    int8_tools.quantization_module()  # fail before any work when the tools are missing
    run = trained.settings
    prepared = _prepared_for_int8(settings, run, ckpt)
    fold = run.data.fold
    data_check = int8_tools.check_calibration_data(
        trained.data_identity, prepared, fold, prepared.root, settings.data_dir is not None
    )
    mean, std = fp32_sidecar["mean"], fp32_sidecar["std"]
    size = tuple(fp32_sidecar["input_size"])  # --size may differ from the prepared data's
    train = int8_tools.pick_calibration(prepared.load("train", fold=fold).images, settings.calibration_images)
    train = int8_tools.images_at(train, size)
    out = int8_path(fp32)
    log.info("quantising %s to INT8, calibrated on %d training images", fp32, len(train))
    # One image per calibration batch: the histogram methods need batches of equal size.
    calibration = list(int8_tools.normalized_batches(train, mean, std, batch=1))
    int8_tools.quantize(fp32, out, calibration, settings.calibration_method)
    val = prepared.load("val", fold=fold)
    val_images, val_masks = int8_tools.images_at(val.images, size), int8_tools.masks_at(val.masks, size)
    agreement = int8_tools.mask_agreement(
        fp32, out, int8_tools.normalized_batches(val_images, mean, std), "val", val_masks
    )
    log.info(
        "INT8 vs fp32 on %d val images: mean mask Dice %.4f (worst %.4f); mDice %.4f vs %.4f",
        agreement.n_images,
        agreement.mean_dice,
        agreement.min_dice,
        agreement.int8_mdice,
        agreement.fp32_mdice,
    )
    try:
        int8_tools.require_agreement(agreement, settings.int8_min_dice, out, settings.int8_max_mdice_drop)
    except ExportError:
        out.unlink(missing_ok=True)  # a file that disagrees must not be deployed by mistake
        raise
    sidecar = {
        **fp32_sidecar,
        "format": "onnx-int8",
        "file": out.name,
        "parity": {
            "reference": f"the fp32 file {fp32.name}, masks thresholded at 0.5",
            "mask_agreement": agreement.as_dict(),
            "min_mean_dice": settings.int8_min_dice,
            "max_mdice_drop": settings.int8_max_mdice_drop,
        },
        "quantization": {
            "tool": "onnxruntime.quantization.quantize_static",
            "format": "QDQ",
            "weights": "int8, per output channel",
            "activations": f"uint8, ranges by {settings.calibration_method}",
            "calibration_split": "train",
            "calibration_images": len(train),
            "calibration_data": str(prepared.root),
            "data_check": data_check,
        },
    }
    write_json_atomic(sidecar_path(out), sidecar)
    return Int8Result(out, sidecar_path(out), len(train), agreement)
