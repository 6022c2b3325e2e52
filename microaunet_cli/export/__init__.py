"""Getting a trained network out of the toolkit: ONNX, TorchScript or a ``torch.export`` program,
each checked against the eager network right after it is written, with a JSON sidecar beside it."""

from microaunet_cli.errors import ExportError, ParityError
from microaunet_cli.export.api import ExportResult, export_checkpoint
from microaunet_cli.export.settings import ExportSettings

__all__ = ["ExportError", "ExportResult", "ExportSettings", "ParityError", "export_checkpoint"]
