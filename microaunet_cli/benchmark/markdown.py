"""The report as Markdown: two tables, the conventions and the environment, ready to paste."""

from __future__ import annotations

from microaunet_cli.benchmark.report import BenchmarkReport


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _megabytes(nbytes: int | None) -> str:
    return "—" if nbytes is None else f"{nbytes / 2**20:.1f}"


def _size_table(report: BenchmarkReport) -> list[str]:
    ref = report.models[0]
    lines = [
        (
            "| model | params | trainable | GFLOPs | GMACs | params vs first | MACs vs first | "
            "feature maps written (MB) |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in report.models:
        lines.append(
            f"| {m.label} | {m.params_total:,} | {m.params_trainable:,} | {m.flops / 1e9:.4f} | "
            f"{m.macs / 1e9:.4f} | {m.params_total / ref.params_total:.2f}× | "
            f"{(m.macs / ref.macs if ref.macs else 0):.2f}× | "
            f"{_megabytes(m.feature_bytes_written)} |"
        )
    return lines


def _speed_table(report: BenchmarkReport) -> list[str]:
    batch = report.settings["batch"]
    lines = [
        (
            f"| model | mode | latency p50 (ms) | p90 (ms) | p50 vs first | img/s @ batch {batch} | "
            f"throughput vs first | peak MB @ batch {batch} |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = {(r["model"], r["mode"]): r for r in report.ratios if r["mode"]}
    for r in report.ok():
        one = 1.0 if r.model == report.models[0].label else None
        ratio = ratios.get((r.model, r.mode), {})
        lat = _fmt(ratio.get("latency_p50", one), ".2f") + ("×" if ratio or one else "")
        thr = _fmt(ratio.get("throughput", one), ".2f") + ("×" if ratio or one else "")
        lines.append(
            f"| {r.model} | {r.mode} | {r.latency_ms_p50:.2f} | {r.latency_ms_p90:.2f} | {lat} | "
            f"{r.throughput_ips:.1f} | {thr} | {_fmt(r.peak_memory_mb, '.1f')} |"
        )
    return lines


def to_markdown(report: BenchmarkReport) -> str:
    env = report.environment
    size = report.settings["size"]
    parts = [
        f"### Size at 1×3×{size}×{size}",
        "",
        *_size_table(report),
        "",
        f"### Speed on {env['device_name']} ({env['device']}, {env['cpu_threads']} CPU threads)",
        "",
        *_speed_table(report),
        "",
    ]
    if report.skipped():
        parts += ["Skipped:", ""] + [f"- {r.model} / {r.mode}: {r.reason}" for r in report.skipped()] + [""]
    parts += ["Conventions:", ""] + [f"- {k}: {v}" for k, v in report.conventions.items()] + [""]
    parts += [
        (
            f"Measured {env['date']} with torch {env['torch_version']}, onnxruntime "
            f"{env['onnxruntime_version']}, microaunet {env['toolkit_version']}; ratios are against the "
            f"first model, from the same run."
        ),
        "",
    ]
    return "\n".join(parts)
