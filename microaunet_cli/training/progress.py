"""Training progress for people (rich bars with ETA, loss and lr) and for logs (a line per epoch)."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from rich.progress import Progress, TimeElapsedColumn

from microaunet_cli.progress import on_terminal, rich_bar

log = logging.getLogger(__name__)

# Reading the loss forces a GPU sync; refresh the shown value at most this often.
REFRESH_SECONDS = 0.5


class TrainingProgress:
    def __init__(self, epochs: int, steps_per_epoch: int, quiet: bool = False) -> None:
        self.epochs, self.steps = epochs, steps_per_epoch
        self.quiet = quiet
        self.live = not quiet and on_terminal()
        self._shown = 0.0
        self.progress: Progress | None = None

    def __enter__(self) -> TrainingProgress:  # noqa: PYI034 - never subclassed
        if self.live:
            self.progress = rich_bar(TimeElapsedColumn(), info=True, transient=False)
            self.progress.__enter__()
            self.epoch_task = self.progress.add_task("epochs", total=self.epochs, info="")
            self.step_task = self.progress.add_task("batches", total=self.steps, info="")
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def start_epoch(self, epoch: int, first_step: int) -> None:
        if self.progress is not None:
            self.progress.update(self.epoch_task, completed=epoch)
            self.progress.reset(self.step_task, total=self.steps, completed=first_step)

    def step(self, loss: torch.Tensor, lr: float) -> None:
        if self.progress is None:
            return
        self.progress.advance(self.step_task)
        now = time.monotonic()
        if now - self._shown > REFRESH_SECONDS:
            self._shown = now
            self.progress.update(self.step_task, info=f"loss {float(loss):.4f}  lr {lr:.2e}")

    def end_epoch(self, row: dict[str, Any]) -> None:
        line = format_row(row, self.epochs)
        if self.progress is not None:
            self.progress.update(self.epoch_task, completed=row["epoch"], info=line)
            self.progress.console.print(line, highlight=False)
        elif not self.quiet:
            log.info("%s", line)


def format_row(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}"]
    if "stage" in row:
        parts.append(f"stage {row['stage']}")
    for key, value in row.items():
        if key.startswith("train_") and key != "train_images_per_s" and isinstance(value, float):
            parts.append(f"{key[6:]} {value:.4f}")
    if row.get("val_mdice") is not None:
        parts.append(f"val mDice {row['val_mdice']:.4f}")
    parts.append(f"lr {row['lr']:.2e}")
    if row.get("train_images_per_s"):
        parts.append(f"{row['train_images_per_s']:.0f} img/s")
    return "  ".join(parts)
