"""``microaunet benchmark``: parameters, FLOPs/MACs, latency, throughput and memory, side by side."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from rich.console import Console
from rich.table import Table

from microaunet_cli.benchmark.settings import BenchmarkSettings
from microaunet_cli.cli import base
from microaunet_cli.cli.base import console

if TYPE_CHECKING:
    from microaunet_cli.benchmark import BenchmarkReport

_opt = partial(base.setting_option, BenchmarkSettings)


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _megabytes(nbytes: int | None) -> str:
    return "—" if nbytes is None else f"{nbytes / 2**20:.1f}"


def _size_table(report: BenchmarkReport) -> Table:
    size = report.settings["size"]
    ref = report.models[0]
    table = Table(
        title=f"Size at 1×3×{size}×{size} (MACs = FLOPs/2; norms, activations, pooling, "
        f"interpolation, elementwise not counted; × = ratio to {ref.label}; "
        f"maps MB = feature maps one forward writes)",
        title_justify="left",
    )
    table.add_column("model", style="bold", no_wrap=True)
    for col in ("params", "trainable", "GFLOPs", "GMACs", "params ×", "MACs ×", "maps MB"):
        table.add_column(col, justify="right")
    for m in report.models:
        table.add_row(
            m.label,
            f"{m.params_total:,}",
            f"{m.params_trainable:,}",
            f"{m.flops / 1e9:.4f}",
            f"{m.macs / 1e9:.4f}",
            _ratio(m.params_total / ref.params_total),
            _ratio(m.macs / ref.macs if ref.macs else None),
            _megabytes(m.feature_bytes_written),
        )
    return table


def _speed_table(report: BenchmarkReport) -> Table:
    env, batch = report.environment, report.settings["batch"]
    table = Table(
        title=f"Speed on {env['device_name']} ({env['device']}, {env['cpu_threads']} CPU threads). "
        f"Latency at batch 1; img/s and peak memory at batch {batch}; × = ratio to "
        f"{report.models[0].label}, same run",
        title_justify="left",
    )
    for col in ("model", "mode"):
        table.add_column(col, no_wrap=True)
    for col in ("p50 ms", "p90 ms", "p50 ×", "img/s", "img/s ×", "peak MB", "1st call s"):
        table.add_column(col, justify="right")
    ratios = {(r["model"], r["mode"]): r for r in report.ratios if r["mode"]}
    is_ref = {report.models[0].label}
    for r in report.ok():
        ratio = ratios.get((r.model, r.mode), {})
        one = 1.0 if r.model in is_ref else None
        table.add_row(
            r.model,
            r.mode,
            f"{r.latency_ms_p50:.2f}",
            f"{r.latency_ms_p90:.2f}",
            _ratio(ratio.get("latency_p50", one)),
            f"{r.throughput_ips:.1f}",
            _ratio(ratio.get("throughput", one)),
            "—" if r.peak_memory_mb is None else f"{r.peak_memory_mb:.1f}",
            f"{r.first_call_s:.2f}",
        )
    return table


def _profile_table(label: str, ops: list[dict]) -> Table:
    table = Table(title=f"Top operators by self time: {label} (eager, batch 1)", title_justify="left")
    for col in ("operator", "ms / forward", "calls", "share"):
        table.add_column(col, justify="left" if col == "operator" else "right")
    for op in ops:
        table.add_row(op["op"], f"{op['self_ms']:.2f}", str(op["calls"]), f"{op['share']:.0%}")
    return table


def _print_table(table: Table) -> None:
    # Piped output (a log file, CI) would get 80 columns and truncated numbers; give tables room.
    wide = console if console.is_terminal else Console(width=max(console.width, 132))
    wide.print(table)


def print_report(report: BenchmarkReport) -> None:
    _print_table(_size_table(report))
    _print_table(_speed_table(report))
    for r in report.skipped():
        console.print(f"[yellow]skipped[/] {r.model} / {r.mode}: {r.reason}", highlight=False)
    for r in report.ok():
        if r.memory_note and r.model == report.models[0].label:
            console.print(f"[dim]peak memory not measured for {r.mode}: {r.memory_note}[/]")
    for label, ops in report.profiles.items():
        _print_table(_profile_table(label, ops))
    env = report.environment
    console.print(
        f"[dim]torch {env['torch_version']}, {env['cpu_threads']} CPU threads, {env['date']}. "
        f"Latency: batch 1, p50/p90 of {report.settings['repeats']} repeats after "
        f"{report.settings['warmup']} warm-up calls, models interleaved. Full conventions in "
        f"--json / --markdown.[/]"
    )


@base.command("benchmark")
def benchmark_command(
    model: Annotated[
        list[str] | None,
        _opt("model", "Registered network to measure (repeatable).", "--model", unset="all, unless --ckpt"),
    ] = None,
    ckpt: Annotated[list[Path] | None, _opt("ckpt", "Checkpoint to measure (repeatable).", "--ckpt")] = None,
    size: Annotated[int | None, _opt("size", "Input side in pixels.")] = None,
    device: Annotated[str | None, _opt("device", "auto, cpu, cuda or cuda:N.")] = None,
    modes: Annotated[
        str | None, _opt("modes", "Comma-separated: eager, bf16, compile, onnx, onnx-int8 (CPU).")
    ] = None,
    batch: Annotated[int | None, _opt("batch", "Batch of the throughput and memory measurement.")] = None,
    repeats: Annotated[int | None, _opt("repeats", "Timed batch-1 calls per model and mode.")] = None,
    warmup: Annotated[int | None, _opt("warmup", "Untimed calls first.")] = None,
    threads: Annotated[
        int | None, _opt("threads", "CPU threads for torch and ONNX Runtime.", unset="torch's choice")
    ] = None,
    profile: Annotated[
        int | None, _opt("profile", "Also list the N operators with the most self time per network.")
    ] = None,
    json_out: Annotated[Path | None, _opt("json_out", "Write the full report as JSON.", "--json")] = None,
    markdown_out: Annotated[Path | None, _opt("markdown_out", "Write Markdown tables.", "--markdown")] = None,
    config: base.ConfigOpt = None,
    sets: Annotated[list[str] | None, base.set_option(BenchmarkSettings, "throughput_repeats=20")] = None,
    print_config: base.PrintConfigOpt = False,
) -> None:
    """Measure networks side by side: parameters, FLOPs/MACs, latency, throughput, peak memory.

    Modes: eager fp32, bf16 autocast, torch.compile, ONNX Runtime; one that cannot run is skipped, with why.

    FLOPs come from torch.utils.flop_counter at 1×3×size×size; MACs = FLOPs / 2.

    Ratios are against the first network listed, measured in the same interleaved run.
    """
    settings = base.resolve_settings(BenchmarkSettings, benchmark_command, locals())
    from microaunet_cli.benchmark import run_benchmark, write_outputs  # torch: only once settings are valid

    base.setup_logging()
    report = run_benchmark(settings)
    print_report(report)
    write_outputs(report, settings.json_out, settings.markdown_out)
    for path in (settings.json_out, settings.markdown_out):
        if path is not None:
            console.print(f"wrote [bold]{path}[/]")
