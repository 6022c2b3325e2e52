"""``predict``: masks at each photograph's own size; unreadable files reported and skipped."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import NORMALIZATION, make_checkpoint
from typer.testing import CliRunner

from microaunet_cli.checkpoints import load_trained
from microaunet_cli.cli.app import app
from microaunet_cli.errors import CheckpointError, DataError
from microaunet_cli.inference.predict import list_images, output_names, predict
from microaunet_cli.inference.runners import OnnxRunner, TorchRunner, load_runner


def _write_image(path: Path, height: int, width: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return path


def _rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "predictions.csv").open()))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("run") / "checkpoints" / "best.pt", size=64)


@pytest.mark.realdata
def test_real_kvasir_images_keep_their_size_and_a_corrupt_one_is_skipped(shared_data, ckpt, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    originals = sorted((shared_data / "Kvasir-SEG" / "images").glob("*.jpg"))[:3]
    for p in originals:
        shutil.copy(p, src / p.name)
    (src / "corrupt.jpg").write_bytes(originals[0].read_bytes()[:2000])  # truncated JPEG

    report = predict(src, tmp_path / "out", ckpt=ckpt, device="cpu", batch_size=2, overlay=True)

    assert len(report.predicted) == 3 and [r["file"] for r in report.failed] == ["corrupt.jpg"]
    for p in originals:
        mask = cv2.imread(str(tmp_path / "out" / "masks" / f"{p.stem}.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == cv2.imread(str(p)).shape[:2]  # the original resolution
        assert set(np.unique(mask)) <= {0, 255}
        assert (tmp_path / "out" / "overlays" / f"{p.stem}.png").is_file()
    rows = _rows(tmp_path / "out")
    status = {r["file"]: r["status"] for r in rows}
    assert status == {"corrupt.jpg": "unreadable", **{p.name: "ok" for p in originals}}
    bad = next(r for r in rows if r["status"] == "unreadable")
    assert "corrupt.jpg" in bad["error"] and "--skip-bad" not in bad["error"]
    ok = next(r for r in rows if r["status"] == "ok")
    assert int(ok["polyp_pixels"]) == pytest.approx(
        float(ok["polyp_fraction"]) * int(ok["width"]) * int(ok["height"]), abs=1
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_predicted"] == 3 and summary["unreadable"][0]["file"] == "corrupt.jpg"


def test_listing_is_case_insensitive_and_skips_hidden_and_other_files(tmp_path):
    for name in ("b.JPG", "a.png", "c.TIFF", "d.bmp", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.JPG", "c.TIFF", "d.bmp"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        list_images(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "missing")


def test_same_stem_in_two_formats_does_not_overwrite():
    assert output_names([Path("a.jpg"), Path("a.png"), Path("b.jpg")]) == ["a_jpg.png", "a_png.png", "b.png"]


def test_masks_match_a_direct_forward_pass(ckpt, tmp_path):
    """At the input size, the mask is exactly the thresholded network output (no hidden preprocessing)."""
    src = tmp_path / "in"
    src.mkdir()
    _write_image(src / "x.png", 64, 64)
    predict(src, tmp_path / "out", ckpt=ckpt, device="cpu")
    model = load_trained(ckpt).network
    image = torch.from_numpy(cv2.imread(str(src / "x.png"))[:, :, ::-1].copy())[None]
    mean = torch.tensor(NORMALIZATION["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(NORMALIZATION["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        probs = torch.sigmoid(model((image.permute(0, 3, 1, 2) / 255.0 - mean) / std))[0, 0]
    written = cv2.imread(str(tmp_path / "out" / "masks" / "x.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(written == 255, (probs > 0.5).numpy())


def test_nothing_readable_fails_after_writing_the_report(ckpt, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="none of the 1 image"):
        predict(src, tmp_path / "out", ckpt=ckpt, device="cpu")
    assert _rows(tmp_path / "out")[0]["status"] == "unreadable"


def _export_onnx(ckpt: Path, path: Path) -> Path:
    """Through `microaunet export` itself, so the sidecar is the one users get."""
    pytest.importorskip("onnxruntime")
    from microaunet_cli.export.convert import export_checkpoint
    from microaunet_cli.export.settings import ExportSettings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's tracer warnings
        return export_checkpoint(ExportSettings(ckpt=ckpt, out=path, exporter="torchscript")).out


def test_onnx_and_checkpoint_give_the_same_masks(ckpt, tmp_path):
    onnx = _export_onnx(ckpt, tmp_path / "m.onnx")
    src = tmp_path / "in"
    src.mkdir()
    for i, (h, w) in enumerate([(100, 130), (48, 40), (64, 64)]):
        _write_image(src / f"im{i}.png", h, w, seed=i)
    a = predict(src, tmp_path / "pt", ckpt=ckpt, device="cpu", batch_size=2)
    b = predict(src, tmp_path / "ox", onnx=onnx, device="cpu", batch_size=2)
    assert len(a.predicted) == len(b.predicted) == 3
    for name in ("im0.png", "im1.png", "im2.png"):
        ma = cv2.imread(str(tmp_path / "pt" / "masks" / name), cv2.IMREAD_UNCHANGED)
        mb = cv2.imread(str(tmp_path / "ox" / "masks" / name), cv2.IMREAD_UNCHANGED)
        assert ma.shape == mb.shape and (ma != mb).mean() < 1e-3  # float rounding at the threshold only


def test_a_file_given_to_the_other_option_is_used_for_what_it_is(ckpt, tmp_path):
    """--ckpt m.onnx runs the export and --onnx best.pt the checkpoint, as load() does; the commands
    that need a training checkpoint say what an .onnx is instead of failing to unpickle it."""
    onnx = _export_onnx(ckpt, tmp_path / "m.onnx")
    src = _write_image(tmp_path / "one.png", 50, 70)
    assert isinstance(load_runner(onnx, None, "cpu"), OnnxRunner)
    assert isinstance(load_runner(None, ckpt, "cpu"), TorchRunner)
    for args in (["--ckpt", str(onnx)], ["--onnx", str(ckpt)]):
        out = tmp_path / args[0].strip("-")
        result = CliRunner().invoke(
            app, ["predict", *args, "--input", str(src), "--out", str(out), "--device", "cpu"]
        )
        assert result.exit_code == 0, result.output
        assert (out / "masks" / "one.png").is_file()
    with pytest.raises(CheckpointError, match=r"m\.onnx is an exported ONNX file.*the \.pt file"):
        load_trained(onnx)
    result = CliRunner().invoke(app, ["export", "--ckpt", str(onnx), "--out", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2 and "exported ONNX file" in result.output, result.output
    assert "Traceback" not in result.output


def test_onnx_without_sidecar_is_a_clear_error(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"graph without its sidecar")  # the sidecar is looked for before the graph is parsed
    with pytest.raises(CheckpointError, match=r"m\.onnx\.json is missing"):
        load_runner(None, onnx)


def test_cli_predicts_and_refuses_two_model_sources(ckpt, tmp_path):
    src = _write_image(tmp_path / "one.jpg", 70, 90)
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "--ckpt",
            str(ckpt),
            "--input",
            str(src),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            "--overlay",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "overlays" / "one.png").is_file()
    both = CliRunner().invoke(
        app,
        [
            "predict",
            "--ckpt",
            str(ckpt),
            "--onnx",
            "m.onnx",
            "--input",
            str(src),
            "--out",
            str(tmp_path / "o2"),
        ],
    )
    assert both.exit_code == 2 and "exactly one" in both.output


def test_everyday_images_opaque_rgba_and_grey_are_predicted_transparent_is_named(
    ckpt, tmp_path, caplog, monkeypatch
):
    """Photos exported as RGBA PNGs get the same mask as the RGB file; a transparent one is reported by
    name and skipped; a grey photo is replicated to three channels, with a warning."""
    src = tmp_path / "in"
    src.mkdir()
    bgr = cv2.imread(str(_write_image(src / "rgb.png", 48, 80)))
    opaque = np.dstack([bgr, np.full((48, 80), 255, np.uint8)])
    cv2.imwrite(str(src / "rgba.png"), opaque)
    see_through = opaque.copy()
    see_through[:10, :10, 3] = 0
    cv2.imwrite(str(src / "clear.png"), see_through)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(src / "grey.png"), grey)
    cv2.imwrite(str(src / "grey3.png"), np.dstack([grey] * 3))
    monkeypatch.setattr(logging.getLogger("microaunet_cli"), "propagate", True)
    with caplog.at_level("WARNING", logger="microaunet_cli"):
        predict(src, tmp_path / "out", ckpt=ckpt, device="cpu")
    rows = {r["file"]: r for r in _rows(tmp_path / "out")}
    assert {f for f, r in rows.items() if r["status"] == "ok"} == {
        "rgb.png",
        "rgba.png",
        "grey.png",
        "grey3.png",
    }
    assert rows["clear.png"]["status"] == "unreadable"
    assert "clear.png" in rows["clear.png"]["error"] and "100 transparent pixel" in rows["clear.png"]["error"]
    masks = tmp_path / "out" / "masks"

    def read(name: str) -> np.ndarray:
        return cv2.imread(str(masks / name), cv2.IMREAD_UNCHANGED)

    assert np.array_equal(read("rgba.png"), read("rgb.png"))
    assert read("grey.png").shape == (48, 80) and np.array_equal(read("grey.png"), read("grey3.png"))
    assert "grey.png: greyscale image, replicated to 3 channels" in caplog.text


def test_a_checkpoint_runs_folded_and_gives_the_unfolded_networks_probabilities():
    """predict, evaluate and the API run what export writes: BatchNorm folded, branches merged."""
    import torch

    from microaunet_cli.inference.runners import TorchRunner
    from microaunet_cli.models import create_model

    torch.manual_seed(0)
    net = create_model("microaunet_rt")
    for m in net.modules():  # statistics of the data seen, so activations stay O(1), as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, 3, 64, 64))
    net.train()
    runner = TorchRunner(net, torch.device("cpu"), [0.5] * 3, [0.25] * 3, (64, 64), 0.5, "test")
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)

    probs = runner.probs(images)

    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in runner.model.modules())
    assert net.training and any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # untouched
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        reference = torch.sigmoid(net.eval()(x))[:, 0].numpy()
    assert 0.05 < reference.std()  # probabilities that vary, not all 0 or 1
    assert np.abs(probs - reference).max() < 1e-5
