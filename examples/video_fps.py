"""Video speed, reproducibly: end-to-end and model-only FPS of ``predict`` on a generated 1280×720 video.

    python examples/video_fps.py --ckpt runs/t/checkpoints/best.pt --ckpt runs/s/checkpoints/best.pt \
        --frames 150 --out video-fps/

For each checkpoint, eager and ONNX Runtime (exported here with the TorchScript-based exporter), in one
process, one after the other, it reports:

- **end to end**: predicted frames / wall time of ``predict``'s video pipeline (decode, resize, network,
  resize back, threshold, outline, encode the overlay and write the mask PNGs);
- **model in pipeline**: predicted frames / time inside the network calls during that same run (the
  network shares the CPU with the reader and writer threads);
- **model alone**: the same frames, decoded and resized beforehand, through the same network calls
  with nothing else running; the figure end to end is compared with (ratio);
- **frame I/O alone**: the same pipeline with a stand-in for the network that hands back the real
  network's probabilities for the first batch at no cost: the ceiling the reading and writing set, which
  no network, however fast, can pass.

Each row is the median of ``--repeats`` rounds of pipeline, model alone and frame I/O alone. Threads
follow ``predict``: OMP_NUM_THREADS when set, else the cores less two (one for the reader, one for the
writer; at least one).

Speed does not depend on the weights: checkpoints from a one-epoch run on the synthetic set serve.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from microaunet_cli.cpu_threads import video_threads
from microaunet_cli.inference.resize import to_input_size
from microaunet_cli.inference.runners import Predictor, load_runner
from microaunet_cli.inference.settings import VideoSettings
from microaunet_cli.inference.video import predict_video


def make_video(path: Path, frames: int, width: int = 1280, height: int = 720, fps: float = 30.0) -> Path:
    """A moving pink-red "polyp" on textured mucosa, mp4v in MP4 (what OpenCV's wheels can write)."""
    rng = np.random.default_rng(0)
    base = np.empty((height, width, 3), np.uint8)
    base[:] = (110, 120, 200)  # BGR pink
    base += rng.integers(0, 30, base.shape, dtype=np.uint8)
    base = cv2.GaussianBlur(base, (0, 0), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(frames):
        frame = base.copy()
        centre = (width // 3 + 4 * i % (width // 2), height // 2 + int(80 * np.sin(i / 15)))
        cv2.ellipse(frame, centre, (120, 90), i % 180, 0, 360, (60, 60, 190), -1, cv2.LINE_AA)
        writer.write(frame)
    writer.release()
    return path


def model_alone_fps(runner: Predictor, video: Path, frames: int, batch_size: int, repeats: int = 3) -> float:
    """Frames per second of the network calls alone, on the video's frames prepared in advance."""
    cap = cv2.VideoCapture(str(video))
    h, w = runner.input_size
    small = []
    while len(small) < frames:
        ok, bgr = cap.read()
        if not ok:
            break
        small.append(to_input_size(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), h, w))
    cap.release()
    batch = np.stack(small)
    runner.probs(batch[:batch_size])  # warm-up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(batch), batch_size):
            runner.probs(batch[i : i + batch_size])
        rates.append(len(batch) / (time.perf_counter() - started))
    return statistics.median(rates)


@dataclass
class NoNetwork:
    """A runner that costs nothing: the real network's probabilities for the first batch, handed back
    for every batch (so the writer still thresholds, outlines and encodes real masks)."""

    runner: Predictor
    cached: np.ndarray | None = None

    def __getattr__(self, name: str):
        return getattr(self.runner, name)

    def probs(self, images: np.ndarray) -> np.ndarray:
        if self.cached is None:
            self.cached = self.runner.probs(images)
        return self.cached[: len(images)]


def export_onnx(ckpt: Path, out: Path) -> Path:
    from microaunet_cli.export.convert import export_checkpoint
    from microaunet_cli.export.settings import ExportSettings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter: its graphs ran faster on the CPU than dynamo's
        # (docs/ARCHITECTURE.md, "Speed").
        return export_checkpoint(ExportSettings(ckpt=ckpt, out=out, exporter="torchscript")).out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, action="append", required=True, help="checkpoint (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("video-fps"))
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--batch-size", type=int, action="append", help="repeatable; default 8")
    parser.add_argument("--masks", default="png", choices=["png", "video", "none"])
    parser.add_argument(
        "--repeats", type=int, default=3, help="pipeline / model-alone pairs per row (medians)"
    )
    args = parser.parse_args()
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(video_threads())  # as `predict` does for videos
    args.out.mkdir(parents=True, exist_ok=True)
    video = make_video(args.out / "clip-1280x720.mp4", args.frames)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} thread(s)), video {video} ({args.frames} frames 1280x720 mp4v)"
    )
    print(
        "| model | runtime | batch | end to end fps | model in pipeline fps | model alone fps | "
        "frame I/O alone fps | end to end / model alone | frame I/O alone / model alone |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for ckpt in args.ckpt:
        onnx = export_onnx(ckpt, args.out / f"{ckpt.parent.parent.name}.onnx")
        for runtime, runner in (
            ("eager", load_runner(ckpt, None, "cpu")),
            ("onnx", load_runner(None, onnx, "cpu")),
        ):
            name = runner.description.split()[0] if runtime == "eager" else ckpt.parent.parent.name
            for batch in args.batch_size or [8]:
                e2e, in_pipeline, alone, io = [], [], [], []
                settings = VideoSettings(masks=args.masks)
                out = args.out / f"{name}-{runtime}-b{batch}"
                # The three runs alternate, so a change of load on a shared machine touches all of
                # them; medians over the repeats.
                for _ in range(args.repeats):
                    report = predict_video(runner, video, out, settings, batch_size=batch)
                    e2e.append(report.end_to_end_fps)
                    in_pipeline.append(report.model_fps)
                    alone.append(model_alone_fps(runner, video, args.frames, batch, repeats=1))
                    free = predict_video(NoNetwork(runner), video, out, settings, batch_size=batch)
                    io.append(free.end_to_end_fps)
                e, m, a, f = (statistics.median(v) for v in (e2e, in_pipeline, alone, io))
                print(
                    f"| {name} | {runtime} | {batch} | {e:.1f} | {m:.1f} | {a:.1f} | {f:.1f} | "
                    f"{e / a:.2f} | {f / a:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
