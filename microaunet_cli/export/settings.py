"""Settings of ``microaunet export``, with the reason for each default."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from microaunet_cli.config.settings import Section, Side

Format = Literal["onnx", "torchscript", "export"]


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


    @field_validator("check_batches")
    @classmethod
    def _distinct_positive(cls, v: list[int]) -> list[int]:
        if any(b < 1 for b in v) or len(set(v)) < 2:
            raise ValueError("needs at least two different positive batch sizes")
        return v
