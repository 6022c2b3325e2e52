"""The video inputs of ``predict``: which files are videos, where each one's results go, and the clip
of it to read (frame rate, size, first and last frame)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from microaunet_cli.data.io import IMAGE_SUFFIXES
from microaunet_cli.errors import DataError
from microaunet_cli.inference.settings import VideoSettings

# Containers the FFmpeg inside OpenCV's wheels decodes; anything else it can open works with --input FILE.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def list_videos(source: Path) -> list[Path]:
    """The videos to predict: ``source`` if it is one, else the videos directly inside the folder."""
    if source.is_file():
        return [source] if is_video(source) else []
    if not source.is_dir():
        raise DataError(f"--input {source} does not exist; pass an image or video file, or a folder of them")
    return sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith(".") and is_video(p))


def holds_images(source: Path) -> bool:
    """Whether ``source`` is, or is a folder holding, an image ``predict`` reads (beside any videos)."""
    if source.is_file():
        return _is_image(source)
    return source.is_dir() and any(
        p.is_file() and not p.name.startswith(".") and _is_image(p) for p in source.iterdir()
    )


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def ignored_files(source: Path) -> list[Path]:
    """The files in the folder ``source`` that are neither images nor videos (hidden ones aside)."""
    if not source.is_dir():
        return []
    return sorted(
        p
        for p in source.iterdir()
        if p.is_file() and not p.name.startswith(".") and not is_video(p) and not _is_image(p)
    )


def require_inputs(source: Path) -> None:
    """A :class:`DataError` naming ``source`` when ``predict`` finds nothing in it to read."""
    kinds = f"images ({', '.join(IMAGE_SUFFIXES)}) or videos ({', '.join(VIDEO_SUFFIXES)})"
    if source.is_file() and not (is_video(source) or _is_image(source)):
        raise DataError(f"--input {source} is not one of the {kinds}; convert it, or pass a folder of them")
    if list_videos(source) or holds_images(source):
        return
    others = [p.name for p in ignored_files(source)]
    held = f"; it holds only {', '.join(others[:5])}{', ...' if len(others) > 5 else ''}" if others else ""
    raise DataError(f"--input {source} holds no {kinds}{held} (hidden files and subfolders are not read)")


def output_dirs(videos: list[Path], out: Path) -> list[Path]:
    """``out/<stem>/`` per video; ``a.mp4`` beside ``a.avi`` keep their suffixes so neither overwrites."""
    stems = [p.stem for p in videos]
    return [out / (f"{p.stem}_{p.suffix[1:].lower()}" if stems.count(p.stem) > 1 else p.stem) for p in videos]


@dataclass(frozen=True)
class Clip:
    """The frames to read: ``first`` up to ``stop`` (exclusive; None = to the end), predicting every Nth."""

    fps: float
    width: int
    height: int
    declared: int  # the container's frame count (0 when it does not say)
    first: int
    stop: int | None
    every: int


def decoder_threads() -> int:
    """Decoder threads: one on a machine of up to 4 cores, where the network and the writer keep the
    others busy (FFmpeg's own choice there, one per core, cost 40% more CPU for the same frames: 0.71 vs
    0.50 ms per 720p mp4v frame on 2 cores); FFmpeg's choice (0) on larger machines."""
    return 1 if len(os.sched_getaffinity(0)) <= 4 else 0


def open_video(path: Path, settings: VideoSettings) -> tuple[cv2.VideoCapture, Clip]:
    cap = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, decoder_threads()])
    if not cap.isOpened():
        raise DataError(
            f"{path}: cannot be opened as a video (unreadable, truncated before its first frame, "
            f"or a codec this OpenCV build cannot decode); re-encode it, e.g. as H.264 .mp4"
        )
    fps = cap.get(cv2.CAP_PROP_FPS)
    if not fps or not np.isfinite(fps) or fps <= 0:
        cap.release()
        raise DataError(
            f"{path}: the video does not state its frame rate; re-encode it with a fixed frame rate"
        )
    declared = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    first = round(settings.start * fps)
    stop = round(settings.end * fps) if settings.end is not None else None
    if stop is not None and stop <= first:
        cap.release()
        raise DataError(f"{path}: --end {settings.end} s is not after --start {settings.start} s")
    return cap, Clip(fps, width, height, declared, first, stop, settings.every)
