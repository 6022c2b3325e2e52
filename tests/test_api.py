"""The Python API: the same masks as ``predict``, checked inputs, videos, and the distil workflow."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_fixtures import pair

import microaunet_cli as mu
from microaunet_cli.config import RunSettings
from microaunet_cli.data import PrepareSettings, prepare_dataset
from microaunet_cli.errors import CheckpointError, ConfigError, DataError
from microaunet_cli.inference.predict import predict

SIZES = [(80, 96), (48, 40), (64, 64), (120, 70)]


def images() -> list[np.ndarray]:
    return [pair(i, w, h)[0] for i, (h, w) in enumerate(SIZES)]


def predict_masks(tmp_path: Path, threshold: float, batch_size: int = 8, **model: Path) -> list[np.ndarray]:
    """Masks from `predict` itself, for the images written as (lossless) PNG. Compared at the same batch
    size: on a CPU, probabilities move by ~1e-6 with the batch composition, which can flip a pixel that
    sits on the threshold."""
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    for i, rgb in enumerate(images()):
        cv2.imwrite(str(src / f"im{i}.png"), rgb[:, :, ::-1])
    out = tmp_path / f"out-{'-'.join(model)}-b{batch_size}"
    predict(src, out, device="cpu", threshold=threshold, batch_size=batch_size, **model)
    return [
        cv2.imread(str(out / "masks" / f"im{i}.png"), cv2.IMREAD_UNCHANGED) == 255 for i in range(len(SIZES))
    ]


@pytest.fixture(scope="module")
def threshold(tiny_checkpoint) -> float:
    """Median probability of the first image: masks with edges (an untrained network sits far from 0.5)."""
    _, probs = mu.load(tiny_checkpoint, device="cpu").predict(images()[0], return_probs=True)
    return float(np.median(probs))


def test_api_masks_equal_predicts_for_the_same_images(tiny_checkpoint, threshold, tmp_path):
    seg = mu.load(tiny_checkpoint, device="cpu", threshold=threshold)
    expected = predict_masks(tmp_path, threshold, ckpt=tiny_checkpoint)
    one_by_one = predict_masks(tmp_path, threshold, batch_size=1, ckpt=tiny_checkpoint)
    batch = seg.predict_batch(images(), return_probs=True)
    for (h, w), image, (mask, probs), want, want_alone in zip(SIZES, images(), batch, expected, one_by_one):
        assert mask.shape == probs.shape == (h, w) and mask.dtype == bool and probs.dtype == np.float32
        assert 0.05 < want.mean() < 0.95  # edges to disagree on
        assert np.array_equal(mask, want)
        assert np.array_equal(mask, probs > threshold)
        assert np.array_equal(seg.predict(image), want_alone)  # one at a time too


def test_onnx_segmenter_equals_predict_with_onnx(tiny_checkpoint, threshold, tmp_path):
    pytest.importorskip("onnxruntime")
    from microaunet_cli.export.convert import export_checkpoint
    from microaunet_cli.export.settings import ExportSettings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's tracer warnings
        onnx = export_checkpoint(
            ExportSettings(ckpt=tiny_checkpoint, out=tmp_path / "m.onnx", exporter="torchscript")
        ).out
    seg = mu.load(onnx, device="cpu", threshold=threshold)
    assert "ONNX" in repr(seg) and seg.input_size == (64, 64)
    for mask, want in zip(seg.predict_batch(images()), predict_masks(tmp_path, threshold, onnx=onnx)):
        assert np.array_equal(mask, want)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32), [[0, 0, 0]]],
)
def test_a_wrong_image_says_what_is_expected(tiny_checkpoint, bad):
    with pytest.raises(DataError, match=r"RGB uint8 array of shape H×W×3"):
        mu.load(tiny_checkpoint, device="cpu").predict(bad)


def test_load_names_a_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"m\.onnx"):
        mu.load(tmp_path / "m.onnx")


def test_predict_video_takes_options_as_keywords(tiny_checkpoint, tmp_path):
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (64, 48))
    for i in range(6):
        writer.write(pair(i, 64, 48)[0][:, :, ::-1].copy())
    writer.release()
    seg = mu.load(tiny_checkpoint, device="cpu")
    report = seg.predict_video(video, tmp_path / "out", every=2, masks="none")
    assert report.status == "ok" and report.frames == 6 and [r["frame"] for r in report.rows] == [0, 2, 4]
    assert (tmp_path / "out" / "overlay.mp4").is_file() and report.model_fps > 0
    with pytest.raises(ConfigError, match="predict_video: every: .*greater than or equal to 1"):
        seg.predict_video(video, tmp_path / "o2", every=0)
    with pytest.raises(ConfigError, match="evry: Extra inputs.*its options are every, "):
        seg.predict_video(video, tmp_path / "o2", evry=2)
    with pytest.raises(ConfigError, match="batch_size"):
        seg.predict_video(video, tmp_path / "o2", batch_size=0)


def test_run_distillation_trains_the_teacher_once_then_reuses_it(tmp_path):
    data = tmp_path / "data"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=data, size=32, synthetic_count=16, workers=1))
    settings = {
        "data": {"prepared_dir": str(data)},
        "output": {"runs_dir": str(tmp_path / "runs"), "quiet": True},
        "train": {"epochs": 1, "batch_size": 8, "device": "cpu"},
        "model": {"name": "microaunet_fast"},
    }

    first = mu.run_distillation(settings)
    assert first.teacher is not None and first.teacher.model == "malunet"
    assert first.teacher_checkpoint == tmp_path / "runs" / "synthetic-malunet" / "checkpoints" / "best.pt"
    assert first.student.teacher["path"] == str(first.teacher_checkpoint)
    assert first.student_checkpoint.is_file() and first.student.model == "microaunet_fast"

    settings["output"]["overwrite"] = True
    again = mu.run_distillation(RunSettings.model_validate(settings))
    assert again.teacher is None and again.teacher_checkpoint == first.teacher_checkpoint
    with pytest.raises(ConfigError, match="epochs"):
        mu.run_distillation({**settings, "train": {"epochs": 0}})


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 1.5, float("nan"), "0.5", True])
def test_load_refuses_a_threshold_outside_0_1(tiny_checkpoint, bad):
    """0 or below marks every pixel, 1 or above none: never what was meant."""
    with pytest.raises(ConfigError, match=r"threshold.*between 0 and 1"):
        mu.load(tiny_checkpoint, device="cpu", threshold=bad)


@pytest.mark.parametrize("bad", [0, -1, 2.5, None])
def test_predict_batch_refuses_a_batch_size_below_one(tiny_checkpoint, bad):
    seg = mu.load(tiny_checkpoint, device="cpu")
    with pytest.raises(ConfigError, match=r"batch_size"):
        seg.predict_batch(images(), batch_size=bad)


def test_predict_batch_given_one_image_says_to_call_predict(tiny_checkpoint):
    seg = mu.load(tiny_checkpoint, device="cpu")
    with pytest.raises(DataError, match=r"predict_batch takes a list of images.*predict\(image\)"):
        seg.predict_batch(images()[0])


def test_an_empty_image_is_named(tiny_checkpoint):
    seg = mu.load(tiny_checkpoint, device="cpu")
    with pytest.raises(DataError, match=r"image 1: an empty image \(0×10 pixels\)"):
        seg.predict_batch([images()[0], np.zeros((0, 10, 3), np.uint8)])
