"""Errors meant for users: each names the file or option at fault and how to fix it.

The command line prints them as one line (no traceback) and exits with status 2.
"""

from __future__ import annotations


class MicroAUNetError(Exception):
    """Base class for every error that is the user's input, not a bug in the toolkit."""

    exit_code = 2


class ConfigError(MicroAUNetError):
    """A setting is unknown, mistyped or out of range."""


class DataError(MicroAUNetError):
    """A data set on disk is missing, unreadable or inconsistent."""


class CheckpointError(MicroAUNetError):
    """A checkpoint is missing, corrupt, or does not fit the requested use."""


class ExportError(CheckpointError):
    """The checkpoint could not be turned into the requested export format."""


class ParityError(ExportError):
    """The exported program does not compute what the eager network computes."""


class PredictionError(MicroAUNetError):
    """The network failed on an input (out of memory, for instance); what was done before it is kept."""


class TrainingError(MicroAUNetError):
    """Training had to stop (a non-finite loss, for instance); the last good checkpoint is kept."""

    exit_code = 3
