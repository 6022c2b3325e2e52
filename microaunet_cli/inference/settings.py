"""Settings of ``microaunet predict``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from microaunet_cli.config.settings import Section


class PredictSettings(Section):
    # Exactly one model source (checked when loading): a training checkpoint, or an exported ONNX
    # file with its .json sidecar.
    ckpt: Path | None = None
    onnx: Path | None = None
    # An image file or a folder of images (jpg, jpeg, png, tif, tiff, bmp; not recursive).
    input: Path
    out: Path
    overlay: bool = False
    batch_size: int = Field(default=8, ge=1)
    # None: the ONNX sidecar's threshold, else 0.5 (SPEC section 3).
    threshold: float | None = Field(default=None, gt=0, lt=1)
    device: str = "auto"
    # CPU threads for torch (and ONNX Runtime); None keeps torch's choice: OMP_NUM_THREADS, else one
    # per physical core. The same setting as benchmark's --threads.
    threads: int | None = Field(default=None, ge=1)

