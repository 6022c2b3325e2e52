"""Getting a trained network out of the toolkit: ONNX, TorchScript or a ``torch.export`` program,
each checked against the eager network right after it is written, with a JSON sidecar beside it."""

from microaunet_cli.errors import ExportError, ParityError
from microaunet_cli.export.settings import ExportSettings
from microaunet_cli.lazy import lazy_exports

# Loaded on first use: they import torch, and `microaunet export --help` needs only the settings.
_LAZY = {"ExportResult": "convert", "export_checkpoint": "convert"}
__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = ["ExportError", "ExportSettings", "ParityError"] + list(_LAZY)
