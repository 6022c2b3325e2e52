"""Settings of ``microaunet benchmark``, with the reason for each default."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from microaunet_cli.config.settings import Section, Side

MODES = ("eager", "bf16", "compile", "onnx", "onnx-int8")
Mode = Literal["eager", "bf16", "compile", "onnx", "onnx-int8"]
# INT8 is asked for by name: quantising takes seconds per network and only suits CPU deployment.
DEFAULT_MODES = ("eager", "bf16", "compile", "onnx")


class BenchmarkSettings(Section):
    # Registered networks to build with default settings (random weights: speed and size do not
    # depend on the values). None of these and no checkpoints means every registered network.
    model: list[str] = Field(default_factory=list)
    # Checkpoints to measure as trained (their own settings decide the architecture).
    ckpt: list[Path] = Field(default_factory=list)
    # Input side: FLOPs, latency and memory all at 1×3×size×size (throughput at batch×3×size×size).
    size: Side = 256
    device: str = "auto"  # auto (cuda if visible, else cpu) | cpu | cuda | cuda:N
    # eager fp32; bf16 autocast; torch.compile (inductor); ONNX Runtime. Unavailable ones are skipped
    # with the reason in the output. onnx-int8: ONNX Runtime after static INT8 quantisation (CPU).
    modes: list[Mode] = Field(default_factory=lambda: list(DEFAULT_MODES))
    # Batch of the throughput measurement; 16 keeps a CPU run short, use 256 on a GPU.
    batch: int = Field(default=16, ge=1)
    # Timed batch-1 calls per model and mode (p50 and p90 come from these).
    repeats: int = Field(default=30, ge=1)
    # Timed batch-N calls per model and mode (throughput uses their median).
    throughput_repeats: int = Field(default=10, ge=1)
    # Untimed calls first: allocator warm-up, cuDNN/oneDNN algorithm choice, compilation.
    warmup: int = Field(default=5, ge=1)
    # CPU threads for torch and ONNX Runtime; None keeps torch's default (the physical cores).
    threads: int | None = Field(default=None, ge=1)
    # Show the N operators with the most self time per network (eager, batch 1); 0 skips profiling.
    profile: int = Field(default=0, ge=0)
    # Write the full report as JSON / a Markdown table (for a paper or README).
    json_out: Path | None = None
    markdown_out: Path | None = None

    @field_validator("model")
    @classmethod
    def _registered(cls, v: list[str]) -> list[str]:
        from microaunet_cli.models import list_models

        unknown = [m for m in v if m not in list_models()]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not registered; choose from {', '.join(list_models())}")
        return v

    @field_validator("modes", mode="before")
    @classmethod
    def _split_and_dedupe(cls, v: Any) -> Any:
        if isinstance(v, str):  # --modes eager,onnx
            v = [m.strip() for m in v.split(",") if m.strip()]
        if isinstance(v, list):
            v = list(dict.fromkeys(v))
            if not v:
                raise ValueError(f"choose at least one of {', '.join(MODES)}")
        return v
