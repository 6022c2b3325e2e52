"""export: each format matches the eager network on image-like inputs at two batch sizes, and says so."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import NORMALIZATION, make_checkpoint
from typer.testing import CliRunner

from microaunet_cli import onnx_runtime
from microaunet_cli.checkpoints import load_trained
from microaunet_cli.cli.app import app
from microaunet_cli.errors import ConfigError
from microaunet_cli.export import (
    ExportError,
    ExportSettings,
    ParityError,
    export_checkpoint,
    formats,
)
from microaunet_cli.export.parity import image_like_batch, mask_dice

runner = CliRunner()


@pytest.fixture(scope="module", params=["malunet", "microaunet"])
def onnx_export(request, tmp_path_factory) -> tuple[Path, Path, str]:
    """Each network exported once through the command line (the slow part: ~10 s per network)."""
    folder = tmp_path_factory.mktemp(request.param)
    ckpt = make_checkpoint(folder / "best.pt", request.param, size=64)
    result = runner.invoke(app, ["export", "--ckpt", str(ckpt)])
    assert result.exit_code == 0, result.output
    return ckpt, folder / "best.onnx", result.output


def test_onnx_export_passes_parity_and_prints_it(onnx_export):
    _, out, output = onnx_export
    assert out.is_file()
    assert "max |Δ probability|" in output and "Dice" in output
    meta = json.loads(Path(str(out) + ".json").read_text())
    parity = meta["parity"]
    assert parity["max_abs_diff_probability"] <= 1e-3
    assert parity["min_dice"] >= 0.99
    assert sorted(p["batch"] for p in parity["per_batch"]) == [1, 3]


def test_onnx_sidecar_describes_inputs_and_outputs(onnx_export):
    ckpt, out, _ = onnx_export
    meta = json.loads(Path(str(out) + ".json").read_text())
    assert meta["input_size"] == [64, 64]
    assert meta["channels"] == 3
    assert meta["mean"] == NORMALIZATION["mean"] and meta["std"] == NORMALIZATION["std"]
    assert meta["threshold"] == 0.5
    assert meta["output"] == "logits"
    assert meta["opset"] == 18
    assert meta["exporter"] in ("dynamo", "torchscript")
    assert meta["source_checkpoint"] == str(ckpt.resolve())
    assert meta["toolkit_version"]


def test_onnx_batch_axis_is_dynamic(onnx_export):
    import onnxruntime as ort

    ckpt, out, _ = onnx_export
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert not isinstance(session.get_inputs()[0].shape[0], int)  # a named, symbolic axis
    model = load_trained(ckpt).network
    x = image_like_batch(5, (64, 64), NORMALIZATION["mean"], NORMALIZATION["std"], seed=7)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = torch.sigmoid(model(x)).numpy()
    assert got.shape == (5, 1, 64, 64)
    assert np.abs(1 / (1 + np.exp(-got)) - want).max() < 1e-3


@pytest.mark.parametrize("fmt,suffix", [("torchscript", ".torchscript.pt"), ("export", ".pt2")])
def test_torch_formats_match_eager(tmp_path, fmt, suffix):
    ckpt = make_checkpoint(tmp_path / "best.pt", "microaunet", size=64)
    result = export_checkpoint(ExportSettings(ckpt=ckpt, format=fmt))
    assert result.out == tmp_path / f"best{suffix}" and result.out.is_file()
    assert all(p.max_abs_diff < 1e-5 and p.dice == 1.0 for p in result.parity)
    meta = json.loads(result.sidecar.read_text())
    assert meta["format"] == fmt and meta["opset"] is None and meta["output"] == "logits"


def test_onnx_falls_back_to_the_torchscript_exporter(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("dynamo cannot export this")

    monkeypatch.setitem(formats.ONNX_EXPORTERS, "dynamo", broken)
    ckpt = make_checkpoint(tmp_path / "best.pt", "microaunet", size=64)
    result = export_checkpoint(ExportSettings(ckpt=ckpt, out=tmp_path / "m.onnx"))
    assert result.written.exporter == "torchscript"
    assert json.loads(result.sidecar.read_text())["exporter"] == "torchscript"


def test_parity_failure_is_an_error_and_removes_the_file(tmp_path, monkeypatch):
    spec = formats.FORMATS["torchscript"]
    shifted = dataclasses.replace(spec, load=lambda path: lambda x: spec.load(path)(x) + 3.0)
    monkeypatch.setitem(formats.FORMATS, "torchscript", shifted)
    ckpt = make_checkpoint(tmp_path / "best.pt", "microaunet", size=64)
    with pytest.raises(ParityError, match="does not match the eager network"):
        export_checkpoint(ExportSettings(ckpt=ckpt, format="torchscript"))
    assert not (tmp_path / "best.torchscript.pt").exists()
    assert not (tmp_path / "best.torchscript.pt.json").exists()


def test_each_format_gets_only_its_own_options():
    # opset and exporter mean something to ONNX alone; the torch formats must not be handed them.
    settings = ExportSettings(opset=17, exporter="torchscript")
    seen = {}
    for name, spec in formats.FORMATS.items():

        def record(*args, _name=name, **options):
            return seen.setdefault(_name, options)

        probe = dataclasses.replace(spec, write=record)
        probe.write_from(settings, None, None, None)
    assert seen == {"onnx": {"opset": 17, "exporter": "torchscript"}, "torchscript": {}, "export": {}}


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["export", "--ckpt", str(tmp_path / "nope.pt")])
    assert result.exit_code == 2
    assert "nope.pt does not exist" in result.output
    assert "Traceback" not in result.output


def test_unknown_format_is_a_clear_error(tmp_path):
    ckpt = make_checkpoint(tmp_path / "best.pt", "microaunet", size=64)
    result = runner.invoke(app, ["export", "--ckpt", str(ckpt), "--format", "tflite"])
    assert result.exit_code == 2
    assert "format" in result.output and "'onnx', 'torchscript' or 'export'" in result.output


def test_no_checkpoint_and_overwriting_it_are_refused(tmp_path):
    with pytest.raises(ExportError, match="--ckpt"):
        export_checkpoint(ExportSettings())
    ckpt = make_checkpoint(tmp_path / "best.pt", "microaunet", size=64)
    with pytest.raises(ExportError, match="checkpoint itself"):
        export_checkpoint(ExportSettings(ckpt=ckpt, format="torchscript", out=ckpt))


def test_missing_onnxruntime_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ConfigError, match=r"pip install 'microaunet-cli\[export\]'"):
        onnx_runtime.onnxruntime()


class _FakeOrt:
    """An onnxruntime that reports only the given execution providers."""

    def __init__(self, *available: str):
        self.available = list(available)

    def get_available_providers(self) -> list[str]:
        return self.available


def test_provider_choice_is_shared_and_strict_only_when_asked(monkeypatch):
    monkeypatch.setattr(onnx_runtime, "onnxruntime", lambda purpose="": _FakeOrt(onnx_runtime.CPU))
    assert onnx_runtime.providers("cpu") == [onnx_runtime.CPU]
    assert onnx_runtime.providers("cuda:0") == [onnx_runtime.CPU]  # predict falls back, with a warning
    with pytest.raises(ConfigError, match="onnxruntime-gpu"):
        onnx_runtime.providers("cuda", strict=True)  # the benchmark must not time the CPU as a GPU
    with_gpu = _FakeOrt(onnx_runtime.CUDA, onnx_runtime.CPU)
    monkeypatch.setattr(onnx_runtime, "onnxruntime", lambda purpose="": with_gpu)
    assert onnx_runtime.providers("cuda", strict=True) == [onnx_runtime.CUDA, onnx_runtime.CPU]
    assert onnx_runtime.providers("cpu") == [onnx_runtime.CPU]


def test_mask_dice_edge_cases():
    empty = torch.zeros(4, dtype=torch.bool)
    assert mask_dice(empty, empty) == 1.0
    assert mask_dice(torch.tensor([True, False]), torch.tensor([False, True])) == 0.0
    assert mask_dice(torch.tensor([True, True]), torch.tensor([True, False])) == pytest.approx(2 / 3)


def test_parity_inputs_look_like_images_not_noise():
    mean, std = NORMALIZATION["mean"], NORMALIZATION["std"]
    x = image_like_batch(2, (64, 64), mean, std, seed=3)
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.float32
    assert torch.equal(x, image_like_batch(2, (64, 64), mean, std, seed=3))
    # Smooth: neighbouring pixels nearly equal (white noise would correlate at ~0).
    a, b = x[..., :, :-1].flatten(), x[..., :, 1:].flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.9
    # Normalised like the data: undoing the normalisation gives values in [0, 1].
    rgb = x * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    assert rgb.min() >= -1e-5 and rgb.max() <= 1 + 1e-5
