"""One video through the three stages, then a folder of videos: the reports, ``frames.csv``,
``summary.json`` and ``videos.csv``."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microaunet_cli.errors import DataError, MicroAUNetError, PredictionError
from microaunet_cli.fileio import write_csv, write_json_atomic
from microaunet_cli.inference.runners import Predictor, load_runner
from microaunet_cli.inference.settings import VideoSettings
from microaunet_cli.inference.video.sources import (
    VIDEO_SUFFIXES,
    Clip,
    ignored_files,
    list_videos,
    open_video,
    output_dirs,
)
from microaunet_cli.inference.video.stages import Frame, Outputs, Reader, Writer

log = logging.getLogger(__name__)

FRAME_COLUMNS = ("frame", "time_s", "polyp_pixels", "polyp_fraction", "mean_confidence")
VIDEO_COLUMNS = (
    "file",
    "status",
    "out_dir",
    "frames",
    "frames_predicted",
    "end_to_end_fps",
    "model_fps",
    "error",
)


@dataclass
class VideoReport:
    """What one video gave; ``status`` is ok, interrupted or error (``error`` names the file)."""

    source: Path
    out_dir: Path
    status: str = "ok"
    error: str = ""
    frames: int = 0  # frames of the clip written to the overlay
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per predicted frame
    wall_s: float = 0.0
    model_s: float = 0.0

    @property
    def end_to_end_fps(self) -> float | None:
        return len(self.rows) / self.wall_s if self.rows and self.wall_s > 0 else None

    @property
    def model_fps(self) -> float | None:
        return len(self.rows) / self.model_s if self.rows and self.model_s > 0 else None

    def row(self) -> dict[str, Any]:
        return {
            "file": self.source.name,
            "status": self.status,
            "out_dir": str(self.out_dir),
            "frames": self.frames,
            "frames_predicted": len(self.rows),
            "end_to_end_fps": _rounded(self.end_to_end_fps),
            "model_fps": _rounded(self.model_fps),
            "error": self.error,
        }


def _rounded(value: float | None) -> float | str:
    return round(value, 2) if value is not None else ""


# ---------------------------------------------------------------------------------------------- one video


def _batches(inbox: queue.Queue, size: int) -> Iterator[list[Frame]]:
    """The frames in order, in the groups the network stage takes: up to ``size`` frames to predict, or
    one frame only drawn (``--every``), which goes on alone.

    A frame only drawn waits for the mask of the predicted frame before it, so a batch collecting past
    it would hold every frame up to its last predicted one, full size: N × ``size`` frames at
    ``--every N``. The batch is cut there instead, which makes the network take one frame at a time
    when N > 1 (it then runs on a fraction of the frames). The cuts depend on the frame indices only,
    so a frame's mask does not depend on how fast the reader happened to be."""
    batch: list[Frame] = []
    for frame in iter(inbox.get, None):
        if frame.small is None:
            if batch:
                yield batch
                batch = []
            yield [frame]
            continue
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _run_network(runner: Predictor, batch: list[Frame], source: Path) -> float:
    """Fill in each predicted frame's probabilities; returns the seconds the network took."""
    todo = [f for f in batch if f.small is not None]
    if not todo:
        return 0.0
    started = time.perf_counter()
    try:
        probs = runner.probs(np.stack([f.small for f in todo]))
    except Exception as exc:  # out of memory, a graph the runtime rejects: reported per video
        frames = f"frames {todo[0].index}-{todo[-1].index}" if len(todo) > 1 else f"frame {todo[0].index}"
        raise PredictionError(
            f"{source}: the network failed on {frames}: {type(exc).__name__}: {exc} (if it ran out of "
            f"memory, a smaller --batch-size or --device cpu needs less)"
        ) from exc
    elapsed = time.perf_counter() - started
    for frame, prob in zip(todo, probs):
        frame.prob = prob
    return elapsed


def predict_video(
    runner: Predictor, source: Path, out_dir: Path, settings: VideoSettings, batch_size: int = 8
) -> VideoReport:
    """Predict one video into ``out_dir``: overlay video, masks, ``frames.csv``, ``summary.json``.

    Raises :class:`DataError` naming the file for an unusable video, :class:`PredictionError` when the
    network fails (both after writing what was done), and lets a ``KeyboardInterrupt`` through once the
    frames done so far are written and playable.
    """
    report, failure = _predict_one(runner, source, out_dir, settings, batch_size)
    if failure is not None:
        raise failure
    return report


def _predict_one(
    runner: Predictor, source: Path, out_dir: Path, settings: VideoSettings, batch_size: int
) -> tuple[VideoReport, MicroAUNetError | None]:
    """One video through the three stages: its report, and the error to raise when it failed (the
    report says why, and keeps the frames done). A video that cannot be opened, or outputs that cannot
    be created, raise :class:`DataError` before any frame."""
    cap, clip = open_video(source, settings)
    report = VideoReport(source, out_dir)
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=2 * batch_size + 2)
    predicted: queue.Queue = queue.Queue(maxsize=2 * batch_size + 2)
    outputs = Outputs(out_dir, settings)
    try:
        writer = Writer(source, outputs, clip, runner.threshold, predicted)
    except DataError:
        cap.release()
        raise
    reader = Reader(cap, clip, runner.input_size, decoded, stop)
    started = time.perf_counter()
    reader.start()
    writer.start()
    failure: PredictionError | None = None
    try:
        for batch in _batches(decoded, batch_size):
            report.model_s += _run_network(runner, batch, source)
            while batch:  # handed over one by one: no frame the writer is done with stays held here
                predicted.put(batch.pop(0))  # a failed writer keeps draining: this never blocks for good
            if writer.error is not None:
                break
    except KeyboardInterrupt:
        report.status = "interrupted"
        raise
    except PredictionError as exc:
        failure = exc
        report.status, report.error = "error", str(exc)
    finally:
        stop.set()  # the reader stops at its next frame
        predicted.put(None)  # the writer drains what was predicted, then releases its files
        writer.join()
        reader.join()
        cap.release()
        report.wall_s = time.perf_counter() - started
        report.rows, report.frames = writer.rows, writer.frames
        _conclude(report, reader, writer, clip)
        _write_reports(report, runner, clip, settings)
    if report.status != "error":
        return report, None
    return report, failure or DataError(report.error)


def _conclude(report: VideoReport, reader: Reader, writer: Writer, clip: Clip) -> None:
    """Turn what the threads saw into the report's status and error (interrupted and a failed network
    are known already)."""
    if report.status == "ok":
        problem = _problem(report, reader, writer, clip)
        if problem:
            report.status, report.error = "error", problem
    elif writer.unfinished:  # interrupted, or the network failed: the files left behind are named too
        report.error = "; ".join(filter(None, [report.error, f"{report.source}: {writer.unfinished}"]))
    if report.status == "interrupted":
        log.warning("interrupted: %s holds the %d frame(s) done so far", report.out_dir, report.frames)


def _problem(report: VideoReport, reader: Reader, writer: Writer, clip: Clip) -> str:
    src = report.source
    if writer.error is not None:
        also = f"; {writer.unfinished}" if writer.unfinished else ""
        return f"{src}: writing the results to {report.out_dir} failed: {writer.error}{also}"
    if writer.unfinished:
        return f"{src}: {writer.unfinished}"
    if reader.error is not None:
        return f"{src}: decoding failed at frame {reader.next_index}: {reader.error}"
    if reader.next_index == 0:
        return f"{src}: the video holds no frames (empty or unreadable); re-encode or replace it"
    if reader.next_index <= clip.first:
        return (
            f"{src}: --start {clip.first / clip.fps:.2f} s is past the end of the video "
            f"({reader.next_index} frames, {reader.next_index / clip.fps:.2f} s)"
        )
    wanted = clip.declared if clip.stop is None else min(clip.stop, clip.declared)
    if reader.next_index < wanted:
        return (
            f"{src}: truncated or corrupt: frames stop at {reader.next_index} of the {clip.declared} the "
            f"file declares; the {report.frames} frame(s) before that were written to {report.out_dir}"
        )
    return ""


def _write_reports(report: VideoReport, runner: Predictor, clip: Clip, settings: VideoSettings) -> None:
    write_csv(report.out_dir / "frames.csv", report.rows, FRAME_COLUMNS)
    write_json_atomic(
        report.out_dir / "summary.json",
        {
            "input": str(report.source),
            "model": runner.description,
            "input_size": list(runner.input_size),
            "threshold": runner.threshold,
            "status": report.status,
            "error": report.error,
            "video": {
                "fps": clip.fps,
                "width": clip.width,
                "height": clip.height,
                "frames_declared": clip.declared,
            },
            "settings": settings.model_dump(mode="json"),
            "frames": report.frames,
            "frames_predicted": len(report.rows),
            "wall_seconds": round(report.wall_s, 3),
            "model_seconds": round(report.model_s, 3),
            "end_to_end_fps": _rounded(report.end_to_end_fps),
            "model_fps": _rounded(report.model_fps),
            # Above 1: the clip is processed faster than it plays.
            "realtime_factor": _rounded(
                report.frames / clip.fps / report.wall_s if report.wall_s > 0 else None
            ),
        },
    )
    if report.status == "ok":
        log.info(
            "%s: %d frame(s), %s fps end to end, %s fps model only -> %s",
            report.source.name,
            report.frames,
            _rounded(report.end_to_end_fps),
            _rounded(report.model_fps),
            report.out_dir,
        )


# ---------------------------------------------------------------------------------------------- many videos


def predict_videos(
    runner: Predictor,
    videos: list[Path],
    out: Path,
    settings: VideoSettings,
    batch_size: int = 8,
    advance: Callable[[int], None] | None = None,
) -> list[VideoReport]:
    """Every video in turn; an unusable one, or one the network fails on, is reported and the others are
    still processed."""
    reports = []
    for source, out_dir in zip(videos, output_dirs(videos, out)):
        try:
            report, _ = _predict_one(runner, source, out_dir, settings, batch_size)
        except DataError as exc:
            report = VideoReport(source, out_dir, status="error", error=str(exc))
        if report.status == "error":
            log.warning("skipped: %s", report.error)
        reports.append(report)
        if advance is not None:
            advance(1)
    write_csv(out / "videos.csv", [r.row() for r in reports], VIDEO_COLUMNS)
    if not any(r.status == "ok" for r in reports):
        reasons = "; ".join(r.error for r in reports)
        raise DataError(f"none of the {len(reports)} video(s) could be predicted: {reasons}")
    return reports


def predict_video_source(
    source: str | Path,
    out_dir: str | Path,
    ckpt: str | Path | None = None,
    onnx: str | Path | None = None,
    settings: VideoSettings | None = None,
    batch_size: int = 8,
    threshold: float | None = None,
    device: str = "auto",
    on_start: Callable[[int], None] | None = None,
    advance: Callable[[int], None] | None = None,
    tta: bool = False,
) -> list[VideoReport]:
    """``predict`` for a video file or the videos in a folder: one ``out_dir/<stem>/`` per video and
    ``out_dir/videos.csv``. Raises :class:`DataError` only when no video could be predicted."""
    source, out = Path(source), Path(out_dir)
    videos = list_videos(source)  # before loading the model: a wrong --input fails at once
    if not videos:
        raise DataError(f"--input {source} is not a video and holds none ({', '.join(VIDEO_SUFFIXES)})")
    ignored = ignored_files(source)
    if ignored:
        log.warning("not read, neither images nor videos: %s", ", ".join(p.name for p in ignored))
    runner = load_runner(Path(ckpt) if ckpt else None, Path(onnx) if onnx else None, device, threshold, tta)
    log.info("predicting %d video(s) with %s", len(videos), runner.description)
    if on_start is not None:
        on_start(len(videos))
    return predict_videos(runner, videos, out, settings or VideoSettings(), batch_size, advance)
