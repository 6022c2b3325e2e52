"""How many CPU threads a command computes with: one setting, applied to torch and logged at start.

Every PyTorch process starts one OpenMP thread per physical core. Two such processes on one machine
(a ``distill`` beside a ``demo``) each spin that many threads, and they slow each other down far
more than half: give each job its share with ``--threads`` (docs/usage.md, "Sharing a machine").
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)


def video_threads() -> int:
    """The network's threads for videos when nobody chose: the cores this process may use, less one for
    the reader and one for the writer, which run beside it all along (at least one).

    On 2 cores, torch's default of 2 threads made the default student's pipeline 35% slower (122 vs 186
    frames/s end to end, 720p, eager): its threads wait for cores the reader and writer hold.
    """
    return max(1, len(os.sched_getaffinity(0)) - 2)


def use_threads(requested: int | None, default: int | None = None, why: str = "") -> int:
    """Set torch's intra-op threads to ``requested``; None keeps OMP_NUM_THREADS when set, else uses
    ``default`` (said ``why``) when given, else torch's choice (the physical cores). Logs and returns
    the count in use."""
    fallback = requested is None and not os.environ.get("OMP_NUM_THREADS") and default is not None
    if requested is not None or fallback:
        torch.set_num_threads(requested if requested is not None else default)
    count = torch.get_num_threads()
    if requested is not None:
        source = "--threads"
    elif os.environ.get("OMP_NUM_THREADS"):
        source = "OMP_NUM_THREADS"
    elif fallback:
        source = why
    else:
        source = "torch's default, one per physical core; set --threads to share the machine"
    log.info("CPU threads: %d (%s)", count, source)
    return count
