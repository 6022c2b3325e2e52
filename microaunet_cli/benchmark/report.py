"""What a benchmark run found, as plain data: JSON for machines, Markdown for papers and READMEs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ModelInfo:
    label: str
    name: str  # registered network
    source: str  # "registry defaults" or the checkpoint path
    params_total: int
    params_trainable: int
    flops: int
    macs: int
    flops_by_op: dict[str, int]
    # Bytes of all tensors one batch-1 eager forward creates (CPU tracking); None on CUDA.
    feature_bytes_written: int | None = None


@dataclass
class ModeResult:
    model: str  # ModelInfo.label
    mode: str
    status: str = "ok"  # ok | skipped
    reason: str | None = None  # why it was skipped
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    throughput_batch: int | None = None
    throughput_ips: float | None = None
    peak_memory_mb: float | None = None
    memory_note: str | None = None  # why peak memory is missing
    first_call_s: float | None = None  # includes compilation for the compile mode
    setup_s: float | None = None  # export + session creation for the onnx mode
    note: str = ""


@dataclass
class BenchmarkReport:
    environment: dict[str, Any]
    conventions: dict[str, str]
    settings: dict[str, Any]
    models: list[ModelInfo]
    results: list[ModeResult]
    ratios: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def ok(self) -> list[ModeResult]:
        return [r for r in self.results if r.status == "ok"]

    def skipped(self) -> list[ModeResult]:
        return [r for r in self.results if r.status != "ok"]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_ratios(models: list[ModelInfo], results: list[ModeResult]) -> list[dict[str, Any]]:
    """Every model against the first one listed, from the same run: size, latency, throughput."""
    if len(models) < 2:
        return []
    ref = models[0]
    by_key = {(r.model, r.mode): r for r in results if r.status == "ok"}
    out = []
    for m in models[1:]:
        macs = m.macs / ref.macs if ref.macs else None
        out.append(
            {
                "model": m.label,
                "reference": ref.label,
                "mode": None,
                "params": m.params_total / ref.params_total,
                "macs": macs,
            }
        )
        for mode in dict.fromkeys(r.mode for r in results):
            a, b = by_key.get((m.label, mode)), by_key.get((ref.label, mode))
            if a and b:
                out.append(
                    {
                        "model": m.label,
                        "reference": ref.label,
                        "mode": mode,
                        "latency_p50": a.latency_ms_p50 / b.latency_ms_p50,
                        "throughput": a.throughput_ips / b.throughput_ips,
                    }
                )
    return out
