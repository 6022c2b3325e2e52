"""The export formats side by side: file suffix, how to write one, how to run it back."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from microaunet_cli.export.parity import Predict

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
# Upper bound of the dynamic batch axis; torch.export needs one to reason about shapes.
MAX_BATCH = 4096


@dataclass(frozen=True)
class Written:
    """What a writer reports: which exporter produced the file, at which ONNX opset (if ONNX)."""

    exporter: str
    opset: int | None = None


@dataclass(frozen=True)
class FormatSpec:
    suffix: str
    # (network, example input, output path, opset, exporter choice) -> Written
    write: Callable[[nn.Module, torch.Tensor, Path, int, str], Written]
    load: Callable[[Path], Predict]


def batch_dim() -> torch.export.Dim:
    return torch.export.Dim("batch", min=1, max=MAX_BATCH)


@contextlib.contextmanager
def temp_output(path: Path) -> Iterator[Path]:
    """A file in a private folder beside ``path``, moved over ``path`` on success.

    Exporters pick file layouts from the name they are given, so the temporary file keeps the real
    name; the final rename is atomic because it stays on the same file system.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as tmp_dir:
        tmp = Path(tmp_dir) / path.name
        yield tmp
        os.replace(tmp, path)


def get_format(name: str) -> FormatSpec:
    # Imported here, not at the top: each format module imports this one (Written, temp_output). Optional
    # packages (onnx, onnxruntime) are imported later still, by export/deps.py, when a format needs them.
    from microaunet_cli.export import onnx_format, program_format, torchscript_format

    specs = {
        "onnx": FormatSpec(".onnx", onnx_format.write, onnx_format.load),
        "torchscript": FormatSpec(".torchscript.pt", torchscript_format.write, torchscript_format.load),
        "export": FormatSpec(".pt2", program_format.write, program_format.load),
    }
    return specs[name]
