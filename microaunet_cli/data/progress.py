"""Progress of a long loop: a rich bar on a terminal, a plain log line every few seconds otherwise."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

# Batch logs (clusters, CI) get a line at most this often, so they stay short but show life.
LOG_EVERY_S = 5.0


@contextlib.contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a bar when stderr is a terminal."""
    if sys.stderr.isatty():
        with _rich_bar(description, total) as advance:
            yield advance
    else:
        yield _log_lines(description, total)


@contextlib.contextmanager
def _rich_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def _log_lines(description: str, total: int) -> Callable[[int], None]:
    state = {"done": 0, "last": time.monotonic()}

    def advance(n: int = 1) -> None:
        state["done"] += n
        now = time.monotonic()
        if now - state["last"] >= LOG_EVERY_S or state["done"] == total:
            state["last"] = now
            log.info("%s: %d/%d", description, state["done"], total)

    return advance
