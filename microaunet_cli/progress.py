"""Progress of a long loop, drawn one way everywhere (prepare-data, predict, training).

On a terminal: a rich bar on stderr. Otherwise (clusters, CI, pipes): a plain log line every few
seconds, or nothing where the caller asks for quiet.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

log = logging.getLogger(__name__)

# Batch logs (clusters, CI) get a line at most this often, so they stay short but show life.
LOG_EVERY_S = 5.0


def on_terminal() -> bool:
    return sys.stderr.isatty()


def rich_bar(*extra: ProgressColumn, info: bool = False, transient: bool = True) -> Progress:
    """The one bar layout: what, bar, done/total, ``extra`` columns, time left, then (``info``) each
    task's ``info`` field; on stderr."""
    tail = (TextColumn("{task.fields[info]}"),) if info else ()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeRemainingColumn(),
        *tail,
        console=Console(stderr=True),
        transient=transient,
    )


@dataclass
class Tracker:
    """What a loop reports to: ``start(total)`` once the total is known, ``advance(n)`` as it goes."""

    description: str
    total: int | None = None
    log_lines: bool = True
    _bar: Any = None
    _task: Any = None
    _done: int = 0
    _last: float = field(default_factory=time.monotonic)

    def start(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def advance(self, n: int = 1) -> None:
        self._done += n
        if self._bar is not None:
            self._bar.advance(self._task, n)
            return
        now = time.monotonic()
        if self.log_lines and (now - self._last >= LOG_EVERY_S or self._done == self.total):
            self._last = now
            log.info("%s: %d/%d", self.description, self._done, self.total or 0)

    __call__ = advance  # a tracker passes where an ``advance(n)`` callback is expected


@contextlib.contextmanager
def progress(description: str, total: int | None = None, log_lines: bool = True) -> Iterator[Tracker]:
    """A :class:`Tracker` drawing a bar on a terminal; elsewhere log lines (or nothing with
    ``log_lines=False``)."""
    tracker = Tracker(description, total, log_lines)
    if not on_terminal():
        yield tracker
        return
    with rich_bar() as bar:
        tracker._bar, tracker._task = bar, bar.add_task(description, total=total)
        yield tracker
