"""Settings of ``microaunet demo``, with the reason for each default."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from microaunet_cli.config.presets import DEFAULT_STUDENT
from microaunet_cli.config.settings import ModelName, Section, Side


class DemoSettings(Section):
    out: Path = Path("demo")
    # Small images and a small set keep the whole workflow to a few minutes on a laptop CPU.
    size: Side = 64
    count: int = 200
    # The student to distil: the latency-first microaunet_rt, or microaunet (the MicroAUNet paper's design).
    student: ModelName = DEFAULT_STUDENT
    teacher_epochs: int = Field(default=30, ge=1)
    student_epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=16, ge=1)
    # Peak learning rate of both runs. Short runs learn faster with 3e-3 than with the 300-epoch
    # recipe's 1e-3 (measured on this demo and on Kvasir-SEG at 40 epochs: docs/RESULTS.md).
    lr: float = Field(default=3e-3, gt=0)
    device: str = "auto"
    # CPU threads for every step (the training runs' train.num_threads, benchmark's threads); None
    # keeps torch's choice. Set it when the demo shares the machine with another job.
    threads: int | None = Field(default=None, ge=1)
    seed: int = 42
    # Speed is measured at the size papers quote, whatever size the demo trains at.
    bench_size: Side = 256
    bench_repeats: int = Field(default=20, ge=1)
    quiet: bool = False
    # Continue an interrupted demo: each training step resumes from its last.pt where there is one.
    resume: bool = False
