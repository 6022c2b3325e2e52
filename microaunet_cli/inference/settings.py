"""Settings of ``microaunet predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from microaunet_cli.config.settings import Section


class VideoSettings(Section):
    # Predict every Nth frame; the overlay keeps every frame, drawn with the latest mask. Above 1 the
    # network takes one frame at a time: a batch would hold the frames between its predicted ones.
    every: int = Field(default=1, ge=1)
    # The clip to process, in seconds from the start of the video; end None: to the last frame.
    start: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    end: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # png: masks/<frame>.png per predicted frame (exact); video: a lossless FFV1 mask.mkv aligned with
    # the overlay frame for frame; none: only the overlay and the CSV.
    masks: Literal["png", "video", "none"] = "png"
    # FourCC and container of the overlay video. mp4v/mp4 plays everywhere; MJPG/avi survives a hard kill.
    codec: str = Field(default="mp4v", min_length=4, max_length=4)
    container: Literal["mp4", "avi", "mkv", "mov"] = "mp4"
    # Write the polyp's area on every overlay frame.
    area_text: bool = False

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: float | None, info: ValidationInfo) -> float | None:
        start = info.data.get("start")
        if end is not None and start is not None and end <= start:
            raise ValueError(f"the end of the clip must be after its start ({start} s)")
        return end


class PredictSettings(Section):
    # Exactly one model source (checked when loading): a training checkpoint, or an exported ONNX
    # file with its .json sidecar.
    ckpt: Path | None = None
    onnx: Path | None = None
    # An image or video file, or a folder of them (images: jpg, jpeg, png, tif, tiff, bmp; videos: mp4,
    # avi, mov, mkv, m4v, webm, mpg, mpeg, wmv; not recursive).
    input: Path
    out: Path
    overlay: bool = False
    batch_size: int = Field(default=8, ge=1)
    # None: the ONNX sidecar's threshold, else 0.5 (docs/ARCHITECTURE.md, "Metrics").
    threshold: float | None = Field(default=None, gt=0, lt=1)
    device: str = "auto"
    # CPU threads for torch (and ONNX Runtime); None keeps torch's choice: OMP_NUM_THREADS, else one
    # per physical core. The same setting as benchmark's --threads.
    threads: int | None = Field(default=None, ge=1)

    # Flip test-time augmentation: average the probabilities of the image and its two flips (3 passes).
    tta: bool = False

    # Options for video inputs (ignored for images).
    video: VideoSettings = VideoSettings()
