"""Trained weights shipped inside the package, reached by name wherever a checkpoint path is taken.

Each ``<name>.pt`` is a checkpoint of this toolkit without its training state (no optimiser, no
scheduler), loadable with ``torch.load(weights_only=True)``; ``<name>.md`` beside it is its model card:
data and terms, the command that reproduces it, its test scores, commit and checksum.
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent


def shipped_names() -> list[str]:
    """The names of the shipped weights, sorted."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def shipped_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.pt"


def card_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.md"


def looks_like_name(path: str | Path) -> bool:
    """A bare word without a folder or a suffix: meant as a shipped name rather than a file."""
    text = str(path)
    return bool(text) and "/" not in text and "\\" not in text and not Path(text).suffix


def resolve_checkpoint(path: str | Path) -> Path:
    """``path`` itself when it exists (a file, or a folder for the caller's "not a file" error: a run
    folder that happens to bear a shipped name must never be answered with the shipped weights); the
    shipped file when it names shipped weights; else ``path`` unchanged, for the caller's "does not
    exist" error (which lists the names)."""
    path = Path(path)
    if path.exists():
        return path
    return shipped_path(str(path)) if str(path) in shipped_names() else path


def closest_name(path: str | Path) -> str | None:
    """The shipped name a bare word most likely meant (another case, a ``.pt`` suffix, a typo), if
    any; None for a path with a folder, which names a file of the user's own."""
    text = str(path)
    if "/" in text or "\\" in text:
        return None
    wanted = (text[: -len(".pt")] if text.lower().endswith(".pt") else text).lower()
    names = {name.lower(): name for name in shipped_names()}
    close = difflib.get_close_matches(wanted, list(names), cutoff=0.8)  # best first
    return names[close[0]] if close else None


def sha256(path: Path) -> str:
    """The file's SHA-256, hex; shipped files are small (at most 1 MB), so read whole."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
