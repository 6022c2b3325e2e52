"""Measuring networks the way a paper quotes them: parameters, FLOPs/MACs, latency, throughput,
peak memory, for several networks and execution modes in one interleaved run."""

from microaunet_cli.benchmark.api import run_benchmark, write_outputs
from microaunet_cli.benchmark.flops import FlopCount, count_flops
from microaunet_cli.benchmark.report import BenchmarkReport
from microaunet_cli.benchmark.settings import MODES, BenchmarkSettings

__all__ = [
    "MODES",
    "BenchmarkReport",
    "BenchmarkSettings",
    "FlopCount",
    "count_flops",
    "run_benchmark",
    "write_outputs",
]
