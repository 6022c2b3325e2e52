"""The Python API end to end, on the built-in synthetic set (a couple of minutes on a laptop CPU):

    python examples/api_example.py --out api-example/

1. prepare a small synthetic data set (the ``prepare-data`` library call);
2. train the teacher and distil the student with one call, ``run_distillation``;
3. load the student and segment an image, a batch, and a generated video.

The same calls work on real data: prepare it with ``microaunet prepare-data --dataset kvasir ...`` and
pass ``{"data": {"dataset": "kvasir"}}`` (or a YAML file of settings) to ``run_distillation``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import microaunet_cli as mu
from microaunet_cli.data import PrepareSettings, prepare_dataset


def synthetic_frame(i: int, width: int = 320, height: int = 240) -> np.ndarray:
    """An RGB frame with a reddish "polyp" drifting over pink mucosa."""
    frame = np.full((height, width, 3), (200, 120, 110), np.uint8)
    cv2.circle(frame, (60 + 4 * i, height // 2), 40, (170, 50, 50), -1, cv2.LINE_AA)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("api-example"))
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    data = args.out / "data"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=data, size=64, synthetic_count=100))

    # Settings as a nested dict (a RunSettings object or a YAML path work too). The teacher is trained
    # first because runs/synthetic-malunet/ has no checkpoint yet; a second call would reuse it.
    result = mu.run_distillation(
        {
            "data": {"dataset": "synthetic", "prepared_dir": str(data)},
            "model": {"name": "microaunet_fast"},
            "optim": {"lr": 3e-3},
            "train": {"epochs": args.epochs, "batch_size": 16},
            "output": {"runs_dir": str(args.out / "runs"), "overwrite": True, "quiet": True},
        }
    )
    print("teacher:", result.teacher_checkpoint)
    print(
        "student:",
        result.student_checkpoint,
        "test mDice",
        round(result.student.test["test"]["per_image"]["mdice"], 3),
    )

    seg = mu.load(result.student_checkpoint, device="cpu")  # a .onnx file from `microaunet export` works too
    image = synthetic_frame(0)
    mask, probs = seg.predict(image, return_probs=True)  # H×W bool and float32, at the image's size
    print(
        f"{seg}: mask {mask.shape}, polyp {mask.mean():.1%} of the image, max probability {probs.max():.2f}"
    )
    masks = seg.predict_batch([synthetic_frame(i) for i in range(4)])
    print("batch of", len(masks), "masks")

    video = args.out / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (320, 240))
    for i in range(50):
        writer.write(cv2.cvtColor(synthetic_frame(i), cv2.COLOR_RGB2BGR))  # OpenCV writes BGR
    writer.release()
    report = seg.predict_video(video, args.out / "clip", every=1, area_text=True)
    print(
        f"video: {report.frames} frames, {report.end_to_end_fps:.0f} fps end to end, "
        f"{report.model_fps:.0f} fps model only -> {report.out_dir}"
    )


if __name__ == "__main__":
    main()
