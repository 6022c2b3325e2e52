"""Everything a run leaves behind: resolved settings, environment, per-epoch metrics, curves, summary."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from microaunet_cli.config import RunSettings, settings_to_yaml
from microaunet_cli.environment import describe_environment
from microaunet_cli.errors import ConfigError
from microaunet_cli.fileio import atomic_path, write_json_atomic, write_text_atomic


class RunFolder:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.checkpoints = root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    def prepare(self, resume: bool, overwrite: bool) -> None:
        """Refuse to mix two runs in one folder unless told to resume or overwrite."""
        if self.root.exists() and not resume and self.last.exists():
            if not overwrite:
                raise ConfigError(
                    f"run folder {self.root} already holds a run; pass --resume to continue it, "
                    f"--overwrite to replace it, or --name NEW for a new run"
                )
            shutil.rmtree(self.root)
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def write_config(self, settings: RunSettings) -> None:
        write_text_atomic(self.root / "config.yaml", settings_to_yaml(settings))

    def write_env(self, device: torch.device, world_size: int) -> None:
        write_json_atomic(
            self.root / "env.json", describe_environment(device, world_size=world_size, command_line=sys.argv)
        )

    def write_history(self, history: list[dict[str, Any]]) -> None:
        """Rewrite metrics.jsonl/.csv from the full history (kept in the checkpoint), so a resumed
        run never duplicates or loses rows."""
        write_text_atomic(self.root / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in history))
        columns: list[str] = []
        for row in history:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
        write_text_atomic(self.root / "metrics.csv", buf.getvalue())
        self.plot(history)

    def plot(self, history: list[dict[str, Any]]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [row["epoch"] for row in history]
        fig, (ax_loss, ax_dice) = plt.subplots(1, 2, figsize=(10, 3.6))
        ax_loss.plot(epochs, [row["train_loss"] for row in history], label="train loss")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_yscale("log")
        ax_loss.legend()
        val = [(row["epoch"], row["val_mdice"]) for row in history if row.get("val_mdice") is not None]
        if val:
            ax_dice.plot(*zip(*val), marker=".", label="validation mDice (per image)")
            ax_dice.legend(loc="lower right")
        ax_dice.set_xlabel("epoch")
        ax_dice.set_ylim(0, 1)
        fig.tight_layout()
        with atomic_path(self.root / "progress.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.root / "summary.json", summary)
