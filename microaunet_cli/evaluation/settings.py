"""Settings of ``microaunet evaluate``: everything else comes from the checkpoint."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from microaunet_cli.config.settings import Section


class EvaluateSettings(Section):
    ckpt: Path
    # A split of the prepared data; "test" takes every test split (polyp-mix: test_kvasir and test_cvc).
    split: str = "test"
    # Prepared data folder; None takes the one the checkpoint was trained on.
    data_dir: Path | None = None
    # Output folder; None writes <run folder>/eval-<split>/ beside the checkpoint's run.
    out: Path | None = None
    device: str = "auto"
    # CPU threads for torch (and ONNX Runtime); None keeps torch's choice: OMP_NUM_THREADS, else one
    # per physical core. The same setting as benchmark's --threads.
    threads: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=32, ge=1)
    # Overlays of the K cases with the lowest Dice; 0 writes none.
    worst: int = Field(default=8, ge=0)
    # A labelled folder never trained on (images/ + masks/, or N.ext + pN.ext), scored as a test set at
    # original resolution instead of a prepared split.
    external: Path | None = None
    # Flip test-time augmentation: average the probabilities of each image and its two flips.
    tta: bool = False
    # External folder: leave out unmatched, unreadable or size-mismatched files (listed in summary.json).
    skip_bad: bool = False
