"""``predict`` on colonoscopy videos: an overlay video, masks, a per-frame CSV and a speed summary.

Three stages run at once, joined by bounded queues, so the network waits on neither the decoder nor
the encoder (OpenCV and torch release the GIL in their heavy calls):

- the **reader** thread decodes frames (BGR, as OpenCV gives them), converts them to RGB and resizes
  them to the network's input size with :func:`to_input_size` — exactly what an image file goes through;
- the **calling** thread runs the network on batches (``Runner.probs``), the only stage that is timed as
  "model";
- the **writer** thread resizes each probability map back with :func:`to_original_size`, thresholds it
  as the image path does, draws the outline and encodes.

So a frame's mask equals the mask ``predict`` gives for that frame saved as a PNG. Videos are written
under temporary names and renamed when their writers are released, also after Ctrl-C: the file then
holds the frames done so far and plays.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from microaunet_cli.data.io import IMAGE_SUFFIXES
from microaunet_cli.errors import DataError
from microaunet_cli.fileio import write_csv, write_json_atomic
from microaunet_cli.inference.resize import to_input_size, to_original_size
from microaunet_cli.inference.runners import Runner, load_runner
from microaunet_cli.inference.settings import VideoSettings
from microaunet_cli.overlays import PRED_COLOUR

log = logging.getLogger(__name__)

# Containers the FFmpeg inside OpenCV's wheels decodes; anything else it can open works with --input FILE.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
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
# FFV1 is lossless: a mask video read back gives the binary masks exactly (mp4v or MJPG would blur them).
MASK_CODEC = "FFV1"
_BGR_OUTLINE = PRED_COLOUR[::-1]
_POLL_S = 0.1


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


# ---------------------------------------------------------------------------------------------- inputs


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def list_videos(source: Path) -> list[Path]:
    """The videos to predict: ``source`` if it is one, else the videos directly inside the folder."""
    if source.is_file():
        return [source] if is_video(source) else []
    if not source.is_dir():
        raise DataError(f"--input {source} does not exist; pass an image or video file, or a folder of them")
    return sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith(".") and is_video(p))


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


# ---------------------------------------------------------------------------------------------- stages


@dataclass
class Frame:
    index: int
    bgr: np.ndarray
    small: np.ndarray | None  # RGB at the input size; None for frames only drawn (--every)
    prob: np.ndarray | None = None  # at the input size, set by the network stage


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Block until there is room, unless the pipeline is stopping; True when the item went in."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


class Reader(threading.Thread):
    """Decode the clip and prepare the network's input; ends the stream with ``None``."""

    def __init__(
        self,
        cap: cv2.VideoCapture,
        clip: Clip,
        input_size: tuple[int, int],
        out: queue.Queue,
        stop: threading.Event,
    ) -> None:
        super().__init__(name="video-reader", daemon=True)
        self.cap, self.clip, self.input_size, self.out, self.stop = cap, clip, input_size, out, stop
        self.next_index = 0  # frames decoded so far, skipped ones included
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._read()
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
            self.error = exc
        finally:
            _put(self.out, None, self.stop)

    def _read(self) -> None:
        clip, (h, w) = self.clip, self.input_size
        # grab() decodes without converting: skipping to --start frame by frame is exact, where seeking
        # lands on a key frame in most codecs.
        while self.next_index < clip.first and self.cap.grab():
            self.next_index += 1
        while not self.stop.is_set() and (clip.stop is None or self.next_index < clip.stop):
            ok, bgr = self.cap.read()
            if not ok:
                return
            predicted = (self.next_index - clip.first) % clip.every == 0
            # OpenCV decodes BGR; the network, like read_image, wants RGB. Resampling treats channels
            # alike, so swapping them after the resize gives the same array at a 40th of the cost.
            small = cv2.cvtColor(to_input_size(bgr, h, w), cv2.COLOR_BGR2RGB) if predicted else None
            if not _put(self.out, Frame(self.next_index, bgr, small), self.stop):
                return
            self.next_index += 1


@dataclass
class Outputs:
    """Where one video's results go; videos are written to hidden temporary names until released."""

    root: Path
    settings: VideoSettings

    @property
    def overlay(self) -> Path:
        return self.root / f"overlay.{self.settings.container}"

    @property
    def mask_video(self) -> Path:
        return self.root / "mask.mkv"

    @property
    def mask_dir(self) -> Path:
        return self.root / "masks"

    @staticmethod
    def partial(path: Path) -> Path:
        # The container is chosen from the extension, so the temporary name keeps it.
        return path.with_name(f".{path.stem}.partial{path.suffix}")


def _open_writer(source: Path, path: Path, codec: str, clip: Clip, is_color: bool = True) -> cv2.VideoWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(Outputs.partial(path)),
        cv2.VideoWriter_fourcc(*codec),
        clip.fps,
        (clip.width, clip.height),
        is_color,
    )
    if not writer.isOpened():
        writer.release()
        Outputs.partial(path).unlink(missing_ok=True)
        raise DataError(
            f"{source}: cannot write {path} with codec {codec!r}: this OpenCV build has no such "
            f"encoder for .{path.suffix[1:]} files; choose another --codec / --container "
            f"(mp4v with mp4, MJPG with avi)"
        )
    return writer


def _finish(writer: cv2.VideoWriter, path: Path, frames: int) -> None:
    """Release (which writes the container's index) and move the file to its final name."""
    writer.release()
    tmp = Outputs.partial(path)
    if frames and tmp.exists():
        os.replace(tmp, path)
    else:
        tmp.unlink(missing_ok=True)


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    """A {0, 1} mask as a 1-bit PNG (reads back as 0/255): 2-3× faster to encode than 8-bit at 720p.

    Renamed into place like every output, but not fsync'ed: at 30 frames a second a sync per frame
    would hold up the writer, and a crash loses at most the last frames, never leaves half a file."""
    ok, encoded = cv2.imencode(".png", mask.view(np.uint8) * np.uint8(255), [cv2.IMWRITE_PNG_BILEVEL, 1])
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(encoded.tobytes())
    os.replace(tmp, path)


def draw_outline(bgr: np.ndarray, mask: np.ndarray, caption: str = "", in_place: bool = False) -> np.ndarray:
    """The frame with the predicted polyp outlined (magenta) and an optional caption; same size."""
    canvas = bgr if in_place else bgr.copy()
    thickness = max(2, round(canvas.shape[1] / 250))
    contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    # Not anti-aliased: at 720p a 5-px line looks the same and draws 6x faster (0.14 vs 0.86 ms).
    cv2.drawContours(canvas, contours, -1, _BGR_OUTLINE, thickness, lineType=cv2.LINE_8)
    if caption:
        scale = max(0.4, canvas.shape[1] / 1600)
        origin = (round(8 * scale / 0.4), round(20 * scale / 0.4))
        stroke = max(1, round(scale * 2))
        # Dark halo under white text: legible on pink mucosa and on black borders alike.
        cv2.putText(
            canvas, caption, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), stroke * 3, cv2.LINE_AA
        )
        cv2.putText(
            canvas, caption, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), stroke, cv2.LINE_AA
        )
    return canvas


def frame_row(index: int, fps: float, prob: np.ndarray, mask: np.ndarray, threshold: float) -> dict[str, Any]:
    """The CSV row of a predicted frame; ``mask`` is ``prob > threshold``.

    The confidence sums the map with everything at or below the threshold set to 0 (what ``mask``
    leaves out): one pass, 3x faster at 720p than a masked mean, and the same sum in double precision.
    """
    area = cv2.countNonZero(mask.view(np.uint8))
    kept = cv2.threshold(prob, threshold, 0.0, cv2.THRESH_TOZERO)[1] if area else None
    return {
        "frame": index,
        "time_s": index / fps,
        "polyp_pixels": area,
        "polyp_fraction": area / mask.size,
        # As for images: undefined without a predicted polyp, so left empty rather than 0.
        "mean_confidence": cv2.sumElems(kept)[0] / area if kept is not None else "",
    }


class Writer(threading.Thread):
    """Masks back at the frame's size, the CSV rows, the overlay and mask outputs, in frame order."""

    def __init__(
        self, source: Path, outputs: Outputs, clip: Clip, threshold: float, inbox: queue.Queue
    ) -> None:
        super().__init__(name="video-writer", daemon=True)
        self.source, self.outputs, self.clip, self.threshold, self.inbox = (
            source,
            outputs,
            clip,
            threshold,
            inbox,
        )
        s = outputs.settings
        # Opened here, in the calling thread, so a codec the build lacks fails before any work.
        self.overlay = _open_writer(source, outputs.overlay, s.codec, clip)
        try:
            self.masks = (
                # Grey: a fifth of the encoding time of the same mask as three equal channels at 720p.
                _open_writer(source, outputs.mask_video, MASK_CODEC, clip, is_color=False)
                if s.masks == "video"
                else None
            )
        except DataError:
            _finish(self.overlay, outputs.overlay, 0)
            raise
        if s.masks == "png":
            outputs.mask_dir.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        self.frames = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
            self.error = exc
            # Keep draining so the network stage never blocks on a full queue.
            while self.inbox.get() is not None:
                pass
        finally:
            self._release()

    def _write(self) -> None:
        mask = np.zeros((self.clip.height, self.clip.width), bool)
        row: dict[str, Any] = {}
        for frame in iter(self.inbox.get, None):
            if frame.bgr.shape[:2] != mask.shape:
                # VideoWriter would drop such frames without a word (rotated phone videos can do this).
                raise DataError(
                    f"{self.source}: frame {frame.index} is {frame.bgr.shape[1]}x{frame.bgr.shape[0]}, "
                    f"the video declares {self.clip.width}x{self.clip.height}; re-encode it"
                )
            if frame.prob is not None:
                prob = to_original_size(frame.prob, *frame.bgr.shape[:2])
                mask = prob > self.threshold  # strict, as the image path
                row = frame_row(frame.index, self.clip.fps, prob, mask, self.threshold)
                self.rows.append(row)
                if self.outputs.settings.masks == "png":
                    write_mask_png(self.outputs.mask_dir / f"{frame.index:06d}.png", mask)
            # The decoded frame is used for nothing else: draw on it rather than on a copy.
            self.overlay.write(draw_outline(frame.bgr, mask, self._caption(row), in_place=True))
            if self.masks is not None:
                self.masks.write(mask.view(np.uint8) * np.uint8(255))
            self.frames += 1

    def _caption(self, row: dict[str, Any]) -> str:
        if not self.outputs.settings.area_text or not row:
            return ""
        return f"polyp {row['polyp_fraction']:.1%} ({row['polyp_pixels']} px)"

    def _release(self) -> None:
        _finish(self.overlay, self.outputs.overlay, self.frames)
        if self.masks is not None:
            _finish(self.masks, self.outputs.mask_video, self.frames)


# ---------------------------------------------------------------------------------------------- one video


def _batches(inbox: queue.Queue, size: int) -> Iterator[list[Frame]]:
    """Frames in order, cut after every ``size`` frames to predict: fixed batches, so a frame's mask does
    not depend on how fast the reader happened to be."""
    batch: list[Frame] = []
    predicted = 0
    for frame in iter(inbox.get, None):
        batch.append(frame)
        predicted += frame.small is not None
        if predicted == size:
            yield batch
            batch, predicted = [], 0
    if batch:
        yield batch


def _run_network(runner: Runner, batch: list[Frame]) -> float:
    """Fill in each predicted frame's probabilities; returns the seconds the network took."""
    todo = [f for f in batch if f.small is not None]
    if not todo:
        return 0.0
    started = time.perf_counter()
    probs = runner.probs(np.stack([f.small for f in todo]))
    elapsed = time.perf_counter() - started
    for frame, prob in zip(todo, probs):
        frame.prob = prob
    return elapsed


def predict_video(
    runner: Runner, source: Path, out_dir: Path, settings: VideoSettings, batch_size: int = 8
) -> VideoReport:
    """Predict one video into ``out_dir``: overlay video, masks, ``frames.csv``, ``summary.json``.

    Raises :class:`DataError` naming the file for an unusable video (after writing what was done), and
    lets a ``KeyboardInterrupt`` through once the frames done so far are written and playable.
    """
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
    try:
        for batch in _batches(decoded, batch_size):
            report.model_s += _run_network(runner, batch)
            for frame in batch:
                predicted.put(frame)  # a failed writer keeps draining, so this never blocks for good
            if writer.error is not None:
                break
    except KeyboardInterrupt:
        report.status = "interrupted"
        raise
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
    if report.status == "error":
        raise DataError(report.error)
    return report


def _conclude(report: VideoReport, reader: Reader, writer: Writer, clip: Clip) -> None:
    """Turn what the threads saw into the report's status and error."""
    if report.status == "interrupted":
        log.warning("interrupted: %s holds the %d frame(s) done so far", report.out_dir, report.frames)
        return
    problem = _problem(report, reader, writer, clip)
    if problem:
        report.status, report.error = "error", problem


def _problem(report: VideoReport, reader: Reader, writer: Writer, clip: Clip) -> str:
    src = report.source
    if writer.error is not None:
        return f"{src}: writing the results to {report.out_dir} failed: {writer.error}"
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


def _write_reports(report: VideoReport, runner: Runner, clip: Clip, settings: VideoSettings) -> None:
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
    runner: Runner,
    videos: list[Path],
    out: Path,
    settings: VideoSettings,
    batch_size: int = 8,
    advance: Callable[[int], None] | None = None,
) -> list[VideoReport]:
    """Every video in turn; an unusable one is reported and the others are still processed."""
    reports = []
    for source, out_dir in zip(videos, output_dirs(videos, out)):
        try:
            report = predict_video(runner, source, out_dir, settings, batch_size)
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


def holds_images(source: Path) -> bool:
    """Whether ``source`` is, or is a folder holding, an image ``predict`` reads (beside any videos)."""
    if source.is_file():
        return source.suffix.lower() in IMAGE_SUFFIXES
    return source.is_dir() and any(
        p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        for p in source.iterdir()
    )


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
) -> list[VideoReport]:
    """``predict`` for a video file or the videos in a folder: one ``out_dir/<stem>/`` per video and
    ``out_dir/videos.csv``. Raises :class:`DataError` only when no video could be predicted."""
    source, out = Path(source), Path(out_dir)
    videos = list_videos(source)  # before loading the model: a wrong --input fails at once
    if not videos:
        raise DataError(f"--input {source} is not a video and holds none ({', '.join(VIDEO_SUFFIXES)})")
    runner = load_runner(Path(ckpt) if ckpt else None, Path(onnx) if onnx else None, device, threshold)
    log.info("predicting %d video(s) with %s", len(videos), runner.description)
    if on_start is not None:
        on_start(len(videos))
    return predict_videos(runner, videos, out, settings or VideoSettings(), batch_size, advance)
