"""What can go wrong when exporting, as user-facing errors (printed as one line by the CLI)."""

from __future__ import annotations

from microaunet_cli.errors import CheckpointError


class ExportError(CheckpointError):
    """The checkpoint could not be turned into the requested format."""


class ParityError(ExportError):
    """The exported program does not compute what the eager network computes."""
