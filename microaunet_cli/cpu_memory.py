"""Keep freed memory in the process during CPU training, instead of returning it to the system.

glibc's allocator serves each large block (a feature map of a few MB) with its own ``mmap`` and hands
it back with ``munmap`` when freed, and it trims the heap's free top above a threshold. A training step
allocates and frees the same maps every time, so the kernel zero-fills fresh pages for each of them
at every step: keeping them made a 256-px teacher step 1.14-1.17× faster on a 2-core CPU, two threads
(docs/RESULTS.md, "Training speed against the code before this work"). Raising both thresholds keeps
the blocks on the heap for reuse; the process keeps its peak memory until it exits, which a training
run reaches anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks up to 32 MiB come from the heap: a 256-px batch of 8 maps of 8 channels is 16 MiB. (Older
# glibc releases refuse more than 32 MiB on 64-bit systems.)
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (see the module docstring); True when both were set.
    A no-op returning False away from glibc (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    log.debug("allocator: freed memory kept for reuse (%s)", "set" if done else "not supported")
    return done
