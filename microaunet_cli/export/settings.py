"""Settings of ``microaunet export``, with the reason for each default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from microaunet_cli.config.settings import Section, Side


def _known_format(name: str) -> str:
    from microaunet_cli.export.formats import FORMATS  # imports torch: at validation, not at --help

    if name not in FORMATS:
        *first, last = (repr(known) for known in FORMATS)
        # The error a Literal of the names would give.
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": f"{', '.join(first)} or {last}"}
        )
    return name


# A key of export.formats.FORMATS, the one table of the export formats.
Format = Annotated[str, AfterValidator(_known_format)]


class ExportSettings(Section):
    # The checkpoint to export (a last.pt / best.pt of train-teacher or distill).
    ckpt: Path | None = None
    # onnx: for onnxruntime and most deployment stacks; torchscript: C++ libtorch (legacy, deprecated
    # by PyTorch); export: a ``torch.export`` program (.pt2), for ExecuTorch / AOTInductor.
    format: Format = "onnx"
    # Output file; None puts it beside the checkpoint (best.onnx, best.torchscript.pt, best.pt2).
    out: Path | None = None
    # Input side in pixels; None takes the size the checkpoint was trained at.
    size: Side | None = None
    # ONNX opset; 18 is the dynamo exporter's native one (other values are converted to).
    opset: int = Field(default=18, ge=13, le=21)
    # auto tries the dynamo (torch.export-based) exporter first and falls back to the legacy one.
    exporter: Literal["auto", "dynamo", "torchscript"] = "auto"
    # The parity check runs at these batch sizes; two different ones prove the batch axis is dynamic
    # (the program is traced at batch 2, so neither equals the traced size).
    check_batches: list[int] = Field(default=[1, 3], min_length=2)
    # Tolerances of the parity check: the largest |p_export - p_eager| over all pixels, and the
    # smallest Dice between the masks thresholded at 0.5. fp32 reorderings stay near 1e-5.
    atol: float = Field(default=1e-3, gt=0)
    min_dice: float = Field(default=0.99, gt=0, le=1)
    # Also write <out stem>.int8.onnx: ONNX Runtime static quantisation (int8 weights per channel,
    # uint8 activations), for CPU deployment. ONNX only.
    int8: bool = False
    # Training images the INT8 activation ranges are calibrated on (drawn with a fixed seed from the
    # checkpoint's prepared training split). A hundred cover the range of colours and polyp sizes;
    # more mostly costs time.
    calibration_images: int = Field(default=100, ge=1)
    # How activation ranges come from the calibration outputs: their min and max, their 99.99th
    # percentile (clips rare outliers), or the entropy criterion.
    calibration_method: Literal["minmax", "percentile", "entropy"] = "percentile"
    # The INT8 file is checked against the fp32 one on the validation split, and removed (the export
    # failing) unless both hold. Accuracy: its mDice against the ground truth (at the network's size,
    # as training validates) at most this much below the fp32 file's.
    int8_max_mdice_drop: float = Field(default=0.01, ge=0, le=1)
    # Agreement: the mean per-image Dice between the two files' thresholded masks at least this.
    # Quantisation moves boundary pixels: the distilled default student agreed at 0.977 on Kvasir-SEG
    # (128 px) while its validation mDice moved by -0.003, so the floor catches a broken file, not noise.
    int8_min_dice: float = Field(default=0.95, gt=0, le=1)
    # Prepared data folder for calibration and the check; None takes the checkpoint's own.
    data_dir: Path | None = None

    @field_validator("check_batches")
    @classmethod
    def _distinct_positive(cls, v: list[int]) -> list[int]:
        if any(b < 1 for b in v) or len(set(v)) < 2:
            raise ValueError("needs at least two different positive batch sizes")
        return v

    @field_validator("int8")
    @classmethod
    def _int8_is_onnx(cls, v: bool, info: ValidationInfo) -> bool:
        # A check of the field (format is validated before it), so the error names int8 alone.
        fmt = info.data.get("format", "onnx")
        if v and fmt != "onnx":
            raise ValueError(f"--int8 quantises an ONNX file: use it with --format onnx, not {fmt}")
        return v
