"""How many CPU threads a command computes with: one setting, applied to torch and logged at start.

Every PyTorch process starts one OpenMP thread per physical core. Two such processes on one machine
(a ``distill`` beside a ``demo``) each spin that many threads, and they slow each other down far
more than half: give each job its share with ``--threads`` (README, "Sharing a machine").
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)


def use_threads(requested: int | None) -> int:
    """Set torch's intra-op threads to ``requested`` (None keeps torch's choice: OMP_NUM_THREADS when
    set, else the physical cores); log and return the count in use."""
    if requested is not None:
        torch.set_num_threads(requested)
    count = torch.get_num_threads()
    if requested is not None:
        source = "--threads"
    elif os.environ.get("OMP_NUM_THREADS"):
        source = "OMP_NUM_THREADS"
    else:
        source = "torch's default, one per physical core; set --threads to share the machine"
    log.info("CPU threads: %d (%s)", count, source)
    return count
