"""SIGTERM and SIGUSR1 (what clusters send before pre-emption) ask the loop to checkpoint and stop."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None)) if s)


class StopFlag:
    def __init__(self) -> None:
        self.requested = False

    def _handler(self, signum, _frame) -> None:
        log.warning("received %s: finishing this batch, then saving", signal.Signals(signum).name)
        self.requested = True

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handler) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def should_stop(self, rt) -> bool:
        """Every process stops at the same batch: one asking is enough (a max-reduce across ranks)."""
        if not rt.distributed:
            return self.requested
        flag = torch.tensor([1.0 if self.requested else 0.0], device=rt.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())
