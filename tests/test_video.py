"""``predict`` on videos: outputs aligned with the input, the same masks as still images, bad files
reported by name, and Ctrl-C leaving a playable partial overlay."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_fixtures import pair
from typer.testing import CliRunner

from microaunet_cli.cli.app import app
from microaunet_cli.errors import DataError
from microaunet_cli.inference.predict import full_size_probs, predict
from microaunet_cli.inference.runners import load_runner
from microaunet_cli.inference.settings import VideoSettings
from microaunet_cli.inference.video import predict_video, predict_video_source, predict_videos, stages

W, H, FPS, N = 96, 80, 10.0, 10
# The batch of both paths wherever their masks are compared: a convolution over another batch size may
# sum in another order (oneDNN picks its blocking per shape and CPU), which flips pixels that sit within
# rounding of the threshold. The claim is the same computation, so the same batching.
SAME_BATCH = 4


def write_video(path: Path, n: int = N, fps: float = FPS, seed: int = 0) -> Path:
    """Synthetic polyp frames (a moving red square on pink), MJPG in AVI: OpenCV's headless build
    writes it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for i in range(n):
        rgb, _ = pair(seed + i, W, H)
        writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
    writer.release()
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    """Every frame as OpenCV decodes it (BGR)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def video_props(path: Path) -> tuple[int, int, int, float]:
    cap = cv2.VideoCapture(str(path))
    props = (
        len(read_frames(path)),
        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        cap.get(cv2.CAP_PROP_FPS),
    )
    cap.release()
    return props


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def predict_frames_as_png(video: Path, ckpt: Path, threshold: float, tmp_path: Path) -> None:
    """The image path on the video's frames as OpenCV decodes them, saved losslessly: ``images/``."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, bgr in enumerate(read_frames(video)):
        cv2.imwrite(str(frames / f"f{i:02d}.png"), bgr)
    predict(frames, tmp_path / "images", ckpt=ckpt, device="cpu", threshold=threshold, batch_size=SAME_BATCH)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "exam.avi")


@pytest.fixture(scope="module")
def threshold(tiny_checkpoint, video) -> float:
    """The median probability of the first frame: masks cover about half of it (an untrained network's
    probabilities sit far from 0.5, where every mask would be empty and any comparison vacuous)."""
    runner = load_runner(tiny_checkpoint, None, "cpu")
    rgb = cv2.cvtColor(read_frames(video)[0], cv2.COLOR_BGR2RGB)
    probs = np.unique(full_size_probs(runner, [rgb])[0])
    # Halfway between two neighbouring values at the median, so no pixel sits on the threshold, where
    # rounding in another batch could flip it.
    k = len(probs) // 2
    return float((probs[k - 1] + probs[k]) / 2)


@pytest.mark.parametrize(
    ("options", "predicted"),
    [
        ({}, list(range(N))),
        ({"every": 3}, [0, 3, 6, 9]),
        ({"start": 0.2, "end": 0.8, "every": 2}, [2, 4, 6]),
    ],
)
def test_overlay_keeps_the_clip_and_the_csv_has_a_row_per_predicted_frame(
    tiny_checkpoint, video, tmp_path, options, predicted
):
    runner = load_runner(tiny_checkpoint, None, "cpu")
    settings = VideoSettings(codec="MJPG", container="avi", area_text=True, **options)
    report = predict_video(runner, video, tmp_path / "out", settings, batch_size=2)

    clip = N if "start" not in options else round((options["end"] - options["start"]) * FPS)
    assert video_props(tmp_path / "out" / "overlay.avi") == (clip, W, H, FPS)
    rows = csv_rows(tmp_path / "out" / "frames.csv")
    assert [int(r["frame"]) for r in rows] == predicted
    assert [float(r["time_s"]) for r in rows] == pytest.approx([i / FPS for i in predicted])
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == [
        f"{i:06d}.png" for i in predicted
    ]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (
        summary["status"] == "ok"
        and summary["frames"] == clip
        and summary["frames_predicted"] == len(predicted)
    )
    assert summary["end_to_end_fps"] > 0 and summary["model_fps"] >= summary["end_to_end_fps"]
    assert report.frames == clip and not list((tmp_path / "out").glob(".*partial*"))


def test_masks_from_video_frames_equal_predict_on_the_same_frames_as_png(
    tiny_checkpoint, video, threshold, tmp_path
):
    """The lossless comparison: the frames OpenCV decodes from the video, saved as PNG, through the image
    path; against the video path's masks (PNG and the FFV1 mask video)."""
    predict_frames_as_png(video, tiny_checkpoint, threshold, tmp_path)
    runner = load_runner(tiny_checkpoint, None, "cpu", threshold)
    for masks in ("png", "video"):
        predict_video(runner, video, tmp_path / masks, VideoSettings(masks=masks), batch_size=SAME_BATCH)

    from_video = read_frames(tmp_path / "video" / "mask.mkv")
    assert len(from_video) == N
    for i in range(N):
        expected = cv2.imread(str(tmp_path / "images" / "masks" / f"f{i:02d}.png"), cv2.IMREAD_UNCHANGED)
        assert 0.05 < (expected == 255).mean() < 0.95  # a mask with edges to disagree on
        got = cv2.imread(str(tmp_path / "png" / "masks" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(got, expected), f"frame {i}"
        assert np.array_equal(from_video[i][:, :, 0], expected), f"frame {i} of mask.mkv"


def test_frame_rows_give_the_area_and_confidence_predict_gives_for_the_frame_as_png(
    tiny_checkpoint, video, threshold, tmp_path
):
    predict_frames_as_png(video, tiny_checkpoint, threshold, tmp_path)
    runner = load_runner(tiny_checkpoint, None, "cpu", threshold)
    predict_video(runner, video, tmp_path / "video", VideoSettings(masks="none"), batch_size=SAME_BATCH)

    images = {r["file"]: r for r in csv_rows(tmp_path / "images" / "predictions.csv")}
    rows = csv_rows(tmp_path / "video" / "frames.csv")
    assert len(rows) == N
    for row in rows:
        image = images[f"f{int(row['frame']):02d}.png"]
        assert int(row["polyp_pixels"]) == int(image["polyp_pixels"]) > 0
        assert float(row["polyp_fraction"]) == pytest.approx(float(image["polyp_fraction"]))
        # Sums in another order (double here, float32 pairwise there), both written with 6 decimals.
        assert float(row["mean_confidence"]) == pytest.approx(float(image["mean_confidence"]), abs=3e-6)


def test_each_bad_video_is_named_and_the_others_in_the_folder_are_still_done(
    tiny_checkpoint, video, tmp_path
):
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.avi").write_bytes(video.read_bytes())
    (src / "junk.mp4").write_bytes(b"not a video at all" * 20)
    data = video.read_bytes()
    (src / "cut.avi").write_bytes(data[: len(data) * 6 // 10])  # the header survives, the end does not
    write_video(src / "empty.avi", n=0)
    runner = load_runner(tiny_checkpoint, None, "cpu")

    expected = {
        "junk.mp4": "cannot be opened as a video",
        "cut.avi": "truncated",
        "empty.avi": "holds no frames",
    }
    for name, message in expected.items():
        with pytest.raises(DataError, match=message) as info:
            predict_video(runner, src / name, tmp_path / name, VideoSettings())
        assert name in str(info.value)

    with pytest.raises(
        DataError, match=r"good\.avi: --start 5\.00 s is past the end of the video \(10 frames"
    ):
        predict_video(runner, src / "good.avi", tmp_path / "late", VideoSettings(start=5))

    reports = predict_video_source(src, tmp_path / "all", ckpt=tiny_checkpoint, device="cpu")
    status = {r.source.name: r.status for r in reports}
    assert status == {"good.avi": "ok", "junk.mp4": "error", "cut.avi": "error", "empty.avi": "error"}
    assert video_props(tmp_path / "all" / "good" / "overlay.mp4")[:3] == (N, W, H)
    listed = {r["file"]: r for r in csv_rows(tmp_path / "all" / "videos.csv")}
    assert listed["cut.avi"]["status"] == "error" and "cut.avi" in listed["cut.avi"]["error"]


def test_a_codec_the_build_cannot_write_is_named_before_any_work(tiny_checkpoint, video, tmp_path):
    runner = load_runner(tiny_checkpoint, None, "cpu")
    with pytest.raises(DataError, match=r"exam\.avi: cannot write .*overlay\.mp4 with codec 'ZZZZ'"):
        predict_video(runner, video, tmp_path / "out", VideoSettings(codec="ZZZZ"))
    assert not (tmp_path / "out" / "frames.csv").exists()
    with pytest.raises(DataError, match="none of the 1 video"):
        predict_video_source(
            video, tmp_path / "o2", ckpt=tiny_checkpoint, device="cpu", settings=VideoSettings(codec="ZZZZ")
        )


class _InterruptedRunner:
    """A runner that is Ctrl-C'd (KeyboardInterrupt, what SIGINT raises) on its ``at``-th batch."""

    def __init__(self, runner, at: int) -> None:
        self.runner, self.at, self.calls = runner, at, 0
        self.input_size, self.threshold, self.description = runner.input_size, runner.threshold, "interrupted"

    def probs(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.runner.probs(images)


@pytest.mark.parametrize(("codec", "container"), [("mp4v", "mp4"), ("MJPG", "avi")])
def test_ctrl_c_leaves_a_playable_overlay_with_the_frames_done(
    tiny_checkpoint, video, tmp_path, codec, container
):
    runner = _InterruptedRunner(load_runner(tiny_checkpoint, None, "cpu"), at=3)
    with pytest.raises(KeyboardInterrupt):
        predict_video(
            runner, video, tmp_path / "out", VideoSettings(codec=codec, container=container), batch_size=2
        )

    out = tmp_path / "out"
    assert video_props(out / f"overlay.{container}")[:3] == (4, W, H)  # two batches of two were done
    assert len(csv_rows(out / "frames.csv")) == 4
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    assert not list(out.glob(".*partial*"))


def test_cli_predicts_a_video_with_clip_options(tiny_checkpoint, video, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "--ckpt",
            str(tiny_checkpoint),
            "--input",
            str(video),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            "--every",
            "2",
            "--masks",
            "none",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "fps model only" in result.output
    assert len(csv_rows(tmp_path / "out" / "exam" / "frames.csv")) == 5
    assert not (tmp_path / "out" / "exam" / "masks").exists()
    bad = CliRunner().invoke(
        app,
        [
            "predict",
            "--ckpt",
            str(tiny_checkpoint),
            "--input",
            str(video),
            "--out",
            str(tmp_path / "o2"),
            "--every",
            "0",
        ],
    )
    assert bad.exit_code == 2 and "every" in bad.output


_SLOW_PREDICT = """
import sys, time
from pathlib import Path
from microaunet_cli.inference.runners import load_runner
from microaunet_cli.inference.settings import VideoSettings
from microaunet_cli.inference.video import predict_video

runner = load_runner(Path(sys.argv[1]), None, "cpu")
probs = runner.probs
calls = [0]
def slow(images):
    # A network that slows to 1 s a batch after its third: the SIGINT lands mid-video however loaded the
    # machine is (at 0.05 s a batch a loaded test process read its lines after the video had ended).
    calls[0] += 1
    time.sleep(0.05 if calls[0] <= 3 else 1.0)
    print("batch", flush=True)
    return probs(images)
runner.probs = slow
predict_video(runner, Path(sys.argv[2]), Path(sys.argv[3]), VideoSettings(), batch_size=2)
"""


def _child_env() -> dict[str, str]:
    """The environment of a child Python that imports this checkout."""
    path = os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def test_sigint_leaves_a_playable_mp4_with_the_frames_done(tiny_checkpoint, tmp_path):
    """A real SIGINT to a real process (not a raised KeyboardInterrupt): the mp4 index gets written."""
    video = write_video(tmp_path / "long.avi", n=200)
    # Ctrl-C's default disposition in the child: a test run started in the background by a script (`cmd &`
    # in a non-interactive shell) ignores SIGINT, an ignored SIGINT is inherited across exec, and Python
    # then installs no KeyboardInterrupt handler.
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_PREDICT, str(tiny_checkpoint), str(video), str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    for _ in range(3):
        assert proc.stdout.readline() == "batch\n", proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    frames, width, height, _ = video_props(tmp_path / "out" / "overlay.mp4")
    assert 4 <= frames < 200 and (width, height) == (W, H)
    assert len(csv_rows(tmp_path / "out" / "frames.csv")) == frames


def test_every_n_holds_the_frames_of_one_batch_not_n_batches(tiny_checkpoint, tmp_path, monkeypatch):
    """With --every 40 and batches of 2, a batch cut after 2 predicted frames would hold the 40 frames
    between them, full size; frames only drawn must not wait in a batch."""
    alive, peak, lock = [0], [0], threading.Lock()

    class CountedFrame(stages.Frame):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            with lock:
                alive[0] += 1
                peak[0] = max(peak[0], alive[0])
            weakref.finalize(self, _decrement, alive, lock)

    monkeypatch.setattr(stages, "Frame", CountedFrame)
    runner = load_runner(tiny_checkpoint, None, "cpu")
    video = write_video(tmp_path / "long.avi", n=120)
    batch = 2
    report = predict_video(runner, video, tmp_path / "out", VideoSettings(every=40, masks="none"), batch)

    assert report.frames == 120 and [r["frame"] for r in report.rows] == [0, 40, 80]
    queues = 2 * (2 * batch + 2)  # the decoded and the predicted queue
    in_hand = 3  # one each in the reader, the calling thread and the writer
    assert peak[0] <= queues + batch + in_hand, peak[0]


def _decrement(alive: list[int], lock: threading.Lock) -> None:
    with lock:
        alive[0] -= 1


class _FailingRunner:
    """A runner whose network fails (as out of memory does) on its ``at``-th call, once."""

    def __init__(self, runner, at: int) -> None:
        self.runner, self.at, self.calls = runner, at, 0
        self.input_size, self.threshold, self.description = runner.input_size, runner.threshold, "failing"

    def probs(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.runner.probs(images)


def test_a_network_failure_is_named_as_such_and_the_other_videos_are_still_done(
    tiny_checkpoint, video, tmp_path
):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.avi", "b.avi"):
        (src / name).write_bytes(video.read_bytes())
    runner = _FailingRunner(load_runner(tiny_checkpoint, None, "cpu"), at=2)
    reports = predict_videos(runner, sorted(src.iterdir()), tmp_path / "out", VideoSettings(), batch_size=2)

    assert [r.status for r in reports] == ["error", "ok"]
    error = reports[0].error
    assert "a.avi" in error and "network failed" in error and "RuntimeError: CUDA out of memory" in error
    assert "truncated" not in error
    assert "frames 2-3" in error and reports[0].frames == 2  # the first batch of two was written
    listed = {r["file"]: r for r in csv_rows(tmp_path / "out" / "videos.csv")}
    assert listed["a.avi"]["error"] == error and listed["b.avi"]["status"] == "ok"
    summary = json.loads((tmp_path / "out" / "a" / "summary.json").read_text())
    assert summary["status"] == "error" and summary["error"] == error
    assert video_props(tmp_path / "out" / "b" / "overlay.mp4")[0] == N


def test_a_failed_final_rename_is_an_error_naming_the_partial_file(tiny_checkpoint, video, tmp_path):
    out = tmp_path / "out"
    (out / "overlay.mp4").mkdir(parents=True)  # a folder in the way: the rename onto it fails
    (out / "overlay.mp4" / "keep").write_text("")
    runner = load_runner(tiny_checkpoint, None, "cpu")
    with pytest.raises(DataError, match=r"overlay\.mp4") as info:
        predict_video(runner, video, out, VideoSettings(masks="none"))

    partial = out / ".overlay.partial.mp4"
    assert str(partial) in str(info.value) and video_props(partial)[0] == N
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "error" and str(partial) in summary["error"]


_SLOW_SEEK = """
import sys, time
from pathlib import Path
from microaunet_cli.inference.runners import load_runner
from microaunet_cli.inference.settings import VideoSettings
from microaunet_cli.inference.video import pipeline, predict_video

open_video = pipeline.open_video

class SlowSeek:
    # A capture whose grab() (the frame-by-frame seek to --start) takes 0.05 s a frame: the seek to
    # frame 1000 would take 50 s.
    def __init__(self, cap):
        self.cap, self.grabs = cap, 0
    def grab(self):
        self.grabs += 1
        if self.grabs == 20:  # a second into the seek: the calling thread is waiting for frames
            print("seek", flush=True)
        time.sleep(0.05)
        return True
    def __getattr__(self, name):
        return getattr(self.cap, name)

def slow_open(path, settings):
    cap, clip = open_video(path, settings)
    return SlowSeek(cap), clip

pipeline.open_video = slow_open
runner = load_runner(Path(sys.argv[1]), None, "cpu")
predict_video(runner, Path(sys.argv[2]), Path(sys.argv[3]), VideoSettings(start=100), batch_size=2)
"""


def test_sigint_stops_the_seek_to_start(tiny_checkpoint, video, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SEEK, str(tiny_checkpoint), str(video), str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    assert proc.stdout.readline() == "seek\n", proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=20)  # the whole seek takes 50 s
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("Ctrl-C did not stop the seek to --start")
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["status"] == "interrupted"


def test_an_output_folder_in_the_way_is_named_and_the_other_videos_are_still_done(
    tiny_checkpoint, video, tmp_path
):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.avi", "b.avi"):
        (src / name).write_bytes(video.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_text("a file where a.avi's folder goes")

    reports = predict_video_source(src, out, ckpt=tiny_checkpoint, device="cpu")
    assert [r.status for r in reports] == ["error", "ok"]
    assert re.search(r"a\.avi: cannot create the output folder .*/out/a \(", reports[0].error)
    assert {r["file"]: r["status"] for r in csv_rows(out / "videos.csv")} == {"a.avi": "error", "b.avi": "ok"}


def _predict_cli(ckpt: Path, *args: str):
    return CliRunner().invoke(app, ["predict", "--ckpt", str(ckpt), "--device", "cpu", *args])


def test_cli_names_each_file_it_cannot_read_and_predicts_the_rest(tiny_checkpoint, video, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.avi").write_bytes(video.read_bytes())
    (src / "junk.mp4").write_bytes(b"not a video at all" * 20)
    (src / "zero.avi").write_bytes(b"")
    (src / "notes.txt").write_text("exam notes")
    (src / "folder.mp4").mkdir()  # a folder named like a video is not read

    result = _predict_cli(tiny_checkpoint, "--input", str(src), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0 and result.exception is None, result.output
    output = " ".join(result.output.split())  # the console wraps long lines
    assert "good.avi: 10 frame(s)" in output
    for name in ("junk.mp4", "zero.avi"):
        assert f"skipped {src / name}: cannot be opened as a video" in output
    assert "not read, neither images nor videos: notes.txt" in output
    listed = {r["file"]: r["status"] for r in csv_rows(tmp_path / "out" / "videos.csv")}
    assert listed == {"good.avi": "ok", "junk.mp4": "error", "zero.avi": "error"}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ((), r"holds no images \(.*\) or videos \(.*\) \(hidden files"),
        (("notes.txt", ".hidden.mp4"), r"holds no images .* or videos .*; it holds only notes\.txt \("),
    ],
)
def test_cli_a_folder_with_nothing_to_read_is_one_clear_error(tiny_checkpoint, tmp_path, files, message):
    src = tmp_path / "in"
    src.mkdir()
    for name in files:
        (src / name).write_text("x")
    result = _predict_cli(tiny_checkpoint, "--input", str(src), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert re.search(rf"--input {re.escape(str(src))} {message}", " ".join(result.output.split()))


def test_cli_an_input_file_of_another_kind_is_named(tiny_checkpoint, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    result = _predict_cli(tiny_checkpoint, "--input", str(notes), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"--input {notes} is not one of the images" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--every", "0"], "--every"),
        (["--every", "-3"], "--every"),
        (["--start", "-1"], "--start"),
        (["--start", "inf"], "--start"),
        (["--start", "nan"], "--start"),
        (["--end", "inf"], "--end"),
        (["--start", "3", "--end", "2"], "--end"),
    ],
)
def test_cli_a_bad_clip_option_is_named_without_a_traceback(tiny_checkpoint, video, tmp_path, options, named):
    result = _predict_cli(tiny_checkpoint, "--input", str(video), "--out", str(tmp_path / "out"), *options)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"(from option {named})" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # refused before any work
