"""``run_benchmark``: size, FLOPs, latency, throughput and memory of several networks, side by side."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from microaunet_cli.benchmark import flops, memory, timing
from microaunet_cli.benchmark.device import resolve_device, synchronizer
from microaunet_cli.benchmark.markdown import to_markdown
from microaunet_cli.benchmark.modes import DESCRIPTIONS, ModeUnavailable, NetworkInMode, Target, build_mode
from microaunet_cli.benchmark.profiling import top_operators
from microaunet_cli.benchmark.report import BenchmarkReport, ModelInfo, ModeResult, compute_ratios
from microaunet_cli.benchmark.settings import BenchmarkSettings
from microaunet_cli.checkpoints import load_trained
from microaunet_cli.environment import describe_environment
from microaunet_cli.fileio import write_json_atomic, write_text_atomic
from microaunet_cli.models import count_parameters, create_model, inference_copy, list_models

log = logging.getLogger(__name__)


@dataclass
class Subject:
    """One network to measure."""

    label: str
    name: str
    source: str
    model: nn.Module  # the inference form: folded when the network can fuse()
    params: tuple[int, int]  # (total, trainable) of the network as trained, before folding


def _subject(label: str, name: str, source: str, model: nn.Module) -> Subject:
    # Deployment runs the folded network (export writes it too), so that is what gets timed.
    return Subject(label, name, source, inference_copy(model), count_parameters(model))


def load_subjects(settings: BenchmarkSettings, device: torch.device) -> list[Subject]:
    names = settings.model or ([] if settings.ckpt else list_models())
    subjects = [_subject(n, n, "registry defaults", create_model(n).to(device).eval()) for n in names]
    for path in settings.ckpt:
        trained = load_trained(path, device)
        label = f"{trained.name}:{path.parent.name}/{path.name}"
        subjects.append(_subject(label, trained.name, str(path), trained.network))
    seen: dict[str, int] = {}
    for s in subjects:  # the same network twice gets #2, #3 so that labels stay keys
        seen[s.label] = seen.get(s.label, 0) + 1
        if seen[s.label] > 1:
            s.label = f"{s.label}#{seen[s.label]}"
    return subjects


def describe_model(s: Subject, size: tuple[int, int], device: torch.device) -> ModelInfo:
    total, trainable = s.params
    x = torch.zeros(1, 3, *size, device=device)
    count = flops.count_flops(s.model, x)
    written = None if device.type == "cuda" else memory.forward_memory(s.model, x, device).written_bytes
    return ModelInfo(
        s.label, s.name, s.source, total, trainable, count.flops, count.macs, count.by_op, written
    )


def _prepare_runners(
    subjects: list[Subject],
    settings: BenchmarkSettings,
    target: Target,
    results: dict[tuple[str, str], ModeResult],
) -> dict[tuple[str, str], NetworkInMode]:
    """Build and warm up every (model, mode); a failure marks that pair skipped, with the reason."""
    runners = {}
    sync = synchronizer(target.device)
    x1 = torch.randn(1, 3, *target.size, device=target.device)
    xn = torch.randn(settings.batch, 3, *target.size, device=target.device)
    for mode in settings.modes:
        for s in subjects:
            key = (s.label, mode)
            on_cpu = target.device.type == "cpu"
            slow = " (compiling: minutes on a CPU)" if mode == "compile" and on_cpu else ""
            log.info("preparing %s / %s%s", s.label, mode, slow)
            try:
                runner = build_mode(mode, s.model, target)
                first = timing.warm_up(runner.run, runner.prepare(x1), settings.warmup, sync)
                timing.warm_up(runner.run, runner.prepare(xn), max(1, settings.warmup // 2), sync)
            except ModeUnavailable as exc:
                results[key] = ModeResult(s.label, mode, status="skipped", reason=str(exc))
                continue
            except Exception as exc:
                if mode == "eager":
                    raise
                reason = f"failed: {type(exc).__name__}: {_first_line(exc)}"
                results[key] = ModeResult(s.label, mode, status="skipped", reason=reason)
                log.warning("%s / %s %s", s.label, mode, reason)
                continue
            runners[key] = runner
            results[key] = ModeResult(
                s.label,
                mode,
                first_call_s=first,
                setup_s=runner.setup_s or None,
                note=runner.note,
                memory_note=runner.memory_note,
            )
    return runners


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _measure(
    runners: dict[tuple[str, str], NetworkInMode],
    settings: BenchmarkSettings,
    target: Target,
    results: dict[tuple[str, str], ModeResult],
) -> None:
    sync = synchronizer(target.device)
    x1 = torch.randn(1, 3, *target.size, device=target.device)
    xn = torch.randn(settings.batch, 3, *target.size, device=target.device)
    log.info(
        "timing %d entries: %d batch-1 and %d batch-%d repeats each, interleaved",
        len(runners),
        settings.repeats,
        settings.throughput_repeats,
        settings.batch,
    )
    lat = timing.time_interleaved(
        [timing.Timed(k, r.run, r.prepare(x1)) for k, r in runners.items()], settings.repeats, sync
    )
    thr = timing.time_interleaved(
        [timing.Timed(k, r.run, r.prepare(xn)) for k, r in runners.items()], settings.throughput_repeats, sync
    )
    for key, runner in runners.items():
        res = results[key]
        res.latency_ms_p50 = timing.percentile(lat[key], 50) * 1000
        res.latency_ms_p90 = timing.percentile(lat[key], 90) * 1000
        res.throughput_batch = settings.batch
        res.throughput_ips = settings.batch / timing.percentile(thr[key], 50)
        if runner.memory_note is None:
            stats = memory.forward_memory(runner.run, runner.prepare(xn), target.device)
            res.peak_memory_mb = stats.peak_bytes / 2**20


def _conventions(settings: BenchmarkSettings) -> dict[str, str]:
    out = {
        "flops": flops.CONVENTION,
        "not_counted": flops.NOT_COUNTED,
        "timing": timing.CONVENTION,
        "memory": memory.CONVENTION,
        "inputs": "random normal tensors (the values do not change the work done)",
    }
    out.update({f"mode_{m}": DESCRIPTIONS[m] for m in settings.modes})
    return out


def run_benchmark(settings: BenchmarkSettings) -> BenchmarkReport:
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    if device.type == "cuda":
        # Input shapes never change within a run: let cuDNN pick its fastest algorithm per shape.
        torch.backends.cudnn.benchmark = True
    target = Target(device, (settings.size, settings.size), torch.get_num_threads())
    torch.manual_seed(0)
    subjects = load_subjects(settings, device)
    infos = [describe_model(s, target.size, device) for s in subjects]
    results: dict[tuple[str, str], ModeResult] = {}
    runners = _prepare_runners(subjects, settings, target, results)
    _measure(runners, settings, target, results)
    ordered = [results[(s.label, m)] for m in settings.modes for s in subjects]
    profiles = {}
    if settings.profile:
        x1 = torch.randn(1, 3, *target.size, device=device)
        profiles = {s.label: top_operators(s.model, x1, device, settings.profile) for s in subjects}
    return BenchmarkReport(
        describe_environment(device),
        _conventions(settings),
        settings.model_dump(mode="json"),
        infos,
        ordered,
        compute_ratios(infos, ordered),
        profiles,
    )


def write_outputs(report: BenchmarkReport, json_out: Path | None, markdown_out: Path | None) -> None:
    if json_out is not None:
        write_json_atomic(json_out, report.as_dict())
    if markdown_out is not None:
        write_text_atomic(markdown_out, to_markdown(report))
