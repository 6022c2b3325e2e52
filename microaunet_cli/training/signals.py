"""Stop signals ask the loop to checkpoint and stop: SIGTERM and SIGUSR1 (what clusters send before
pre-emption) and SIGINT (Ctrl-C; a second Ctrl-C stops at once, without saving).

A command stopped this way exits with the shell's status for "ended by a signal", 128 + its number
(130 for SIGINT, 143 for SIGTERM, 138 for SIGUSR1), so a script can tell a stop from success (0), a
user error (2) and a failed run (3).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

STOP_SIGNALS = tuple(
    s for s in (getattr(signal, name, None) for name in ("SIGTERM", "SIGUSR1", "SIGINT")) if s
)


def stop_exit_code(signal_name: str | None) -> int:
    """128 + the signal's number; SIGTERM's when the signal is unknown (another rank received it)."""
    signum = getattr(signal, signal_name, None) if signal_name else None
    return 128 + int(signum or signal.SIGTERM)


class StopFlag:
    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None  # the first stop signal received, e.g. "SIGTERM"

    def _handler(self, signum, _frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: the user does not want to wait for the save
        name = signal.Signals(signum).name
        log.warning(
            "received %s: finishing this step, then saving and stopping%s",
            name,
            " (Ctrl-C again to stop at once)" if signum == signal.SIGINT else "",
        )
        self.requested = True
        self.signal_name = self.signal_name or name

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
