"""benchmark: FLOPs equal hand counts, the published sizes hold, every mode is measured or skipped with
a reason, and the report carries its conventions and environment. Timings are reported, never asserted."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from helpers import make_checkpoint
from torch import nn
from typer.testing import CliRunner

from microaunet_cli.benchmark import BenchmarkSettings, count_flops, modes, run_benchmark
from microaunet_cli.benchmark.memory import forward_memory
from microaunet_cli.benchmark.modes import ModeUnavailable, NetworkInMode
from microaunet_cli.benchmark.timing import Timed, time_interleaved
from microaunet_cli.cli.app import app
from microaunet_cli.errors import ConfigError
from microaunet_cli.models import count_parameters, create_model, list_models

runner = CliRunner()
# Tiny and quick: 32×32 inputs, a couple of repeats.
QUICK = {"size": 32, "batch": 2, "repeats": 2, "throughput_repeats": 2, "warmup": 1}


@pytest.mark.parametrize(
    "conv,hw",
    [
        (nn.Conv2d(3, 8, 3, padding=1), (32, 32)),
        (nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), (32, 32)),
        (nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8), (16, 16)),  # depthwise: 1 input channel each
    ],
)
def test_convolution_flops_equal_the_hand_count(conv, hw):
    x = torch.zeros(1, conv.in_channels, *hw)
    out_h, out_w = conv(x).shape[-2:]
    macs = conv.out_channels * out_h * out_w * (conv.in_channels // conv.groups) * 3 * 3
    count = count_flops(conv, x)
    assert count.macs == macs
    assert count.flops == 2 * macs


def test_linear_flops_equal_the_hand_count():
    count = count_flops(nn.Linear(128, 48), torch.zeros(4, 128))
    assert count.macs == 4 * 128 * 48  # bias not counted
    assert count.flops == 2 * 4 * 128 * 48


def test_malunet_matches_the_published_size():
    model = create_model("malunet").eval()
    count = count_flops(model, torch.zeros(1, 3, 256, 256))
    assert count_parameters(model) == (177_943, 177_943)
    assert count.macs / 1e9 == pytest.approx(0.083, rel=0.05)
    assert count.flops / 1e9 == pytest.approx(0.1655, rel=0.01)  # SPEC section 5


def test_microaunet_flops_match_the_spec():
    count = count_flops(create_model("microaunet").eval(), torch.zeros(1, 3, 256, 256))
    assert count.flops / 1e9 == pytest.approx(0.0825, rel=0.01)


def test_repeats_are_interleaved():
    calls = []
    entries = [Timed(k, lambda arg: calls.append(arg), k) for k in ("A", "B")]
    samples = time_interleaved(entries, repeats=3, sync=lambda: None)
    assert calls == ["A", "B", "A", "B", "A", "B"]
    assert {k: len(v) for k, v in samples.items()} == {"A": 3, "B": 3}


def test_cpu_peak_memory_follows_live_tensors():
    x = torch.zeros(1000)  # 4,000 bytes per float32 copy

    def chain(t: torch.Tensor) -> torch.Tensor:
        for _ in range(4):
            t = t + 1  # the previous intermediate dies when t is rebound
        return t

    stats = forward_memory(chain, x, torch.device("cpu"))
    assert stats.written_bytes == 4 * 4000
    assert 4000 <= stats.peak_bytes <= 2 * 4000


def test_report_has_every_model_ratio_environment_and_convention(monkeypatch):
    from microaunet_cli.benchmark import timing

    timed: list[dict] = []  # what each interleaved timing returned: batch-1 calls first, then batch N
    real = timing.time_interleaved

    def recording(*args):
        timed.append(real(*args))
        return timed[-1]

    monkeypatch.setattr(timing, "time_interleaved", recording)
    report = run_benchmark(
        BenchmarkSettings(model=["malunet", "microaunet"], modes=["eager", "bf16"], **QUICK)
    )
    assert [m.label for m in report.models] == ["malunet", "microaunet"]
    assert report.models[0].params_total == 177_943 and report.models[0].macs > 0
    assert [(r.model, r.mode) for r in report.results] == [
        ("malunet", "eager"),
        ("microaunet", "eager"),
        ("malunet", "bf16"),
        ("microaunet", "bf16"),
    ]
    for r in report.ok():
        calls = np.array(timed[0][(r.model, r.mode)]) * 1000
        assert (r.latency_ms_p50, r.latency_ms_p90) == pytest.approx(
            (np.median(calls), np.percentile(calls, 90))
        )
        assert r.throughput_ips > 0
        assert r.peak_memory_mb > 0
    modes_compared = {r["mode"] for r in report.ratios}
    assert modes_compared == {None, "eager", "bf16"}
    assert {"torch_version", "device_name", "cpu_threads", "date"} <= set(report.environment)
    assert "MACs = FLOPs / 2" in report.conventions["flops"]
    assert "GroupNorm" in report.conventions["not_counted"]


def test_without_models_or_checkpoints_every_registered_network_is_measured():
    report = run_benchmark(BenchmarkSettings(modes=["eager"], **QUICK))
    assert [m.label for m in report.models] == list_models()


def test_unavailable_and_failing_modes_are_skipped_with_a_reason(monkeypatch):
    def no_compiler(model, target):
        raise ModeUnavailable("torch.compile on CPU needs a C++ compiler")

    def crashing(model, target):
        return NetworkInMode("bf16", run=lambda x: (_ for _ in ()).throw(RuntimeError("kernel missing")))

    monkeypatch.setitem(modes.BUILDERS, "compile", no_compiler)
    monkeypatch.setitem(modes.BUILDERS, "bf16", crashing)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    report = run_benchmark(
        BenchmarkSettings(model=["microaunet"], modes=["eager", "bf16", "compile", "onnx"], **QUICK)
    )
    reasons = {r.mode: r.reason for r in report.skipped()}
    assert set(reasons) == {"bf16", "compile", "onnx"}
    assert "C++ compiler" in reasons["compile"]
    assert "kernel missing" in reasons["bf16"]
    assert "pip install" in reasons["onnx"]
    assert [r.mode for r in report.ok()] == ["eager"]


def test_command_writes_json_and_markdown(tmp_path):
    ckpt = make_checkpoint(tmp_path / "run" / "best.pt", "microaunet", size=64)
    args = [
        "benchmark",
        "--model",
        "malunet",
        "--ckpt",
        str(ckpt),
        "--modes",
        "eager",
        "--size",
        "32",
        "--batch",
        "2",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--set",
        "throughput_repeats=2",
        "--json",
        str(tmp_path / "b.json"),
        "--markdown",
        str(tmp_path / "b.md"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "b.json").read_text())
    labels = [m["label"] for m in data["models"]]
    assert labels == ["malunet", "microaunet:run/best.pt"]
    assert data["models"][1]["source"] == str(ckpt)
    assert data["environment"]["cpu_threads"] == torch.get_num_threads()
    md = (tmp_path / "b.md").read_text()
    assert "| microaunet:run/best.pt | 84,281 |" in md and "Conventions" in md


def test_bad_options_are_clear_errors():
    result = runner.invoke(app, ["benchmark", "--modes", "eager,turbo"])
    assert result.exit_code == 2 and "modes" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["benchmark", "--size", "100"])
    assert result.exit_code == 2 and "multiple of 32" in result.output
    with pytest.raises(ConfigError, match="not a device"):
        run_benchmark(BenchmarkSettings(device="tpu:0", **QUICK))
