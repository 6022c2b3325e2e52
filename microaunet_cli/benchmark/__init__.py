"""Measuring networks the way a paper quotes them: parameters, FLOPs/MACs, latency, throughput,
peak memory, for several networks and execution modes in one interleaved run."""

from microaunet_cli.benchmark.settings import MODES, BenchmarkSettings
from microaunet_cli.lazy import lazy_exports

# Loaded on first use: they import torch, and `microaunet benchmark --help` needs only the settings.
_LAZY = {
    "BenchmarkReport": "report",
    "FlopCount": "flops",
    "count_flops": "flops",
    "run_benchmark": "measure",
    "write_outputs": "measure",
}
__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = ["MODES", "BenchmarkSettings"] + list(_LAZY)
