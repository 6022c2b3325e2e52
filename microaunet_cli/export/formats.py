"""The export formats side by side: file suffix, how to write one, how to run it back.

Each writer takes the network, an example input and the output path, plus only the settings it uses
(``FormatSpec.options`` names them): opset and exporter choice are ONNX's alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from microaunet_cli import onnx_runtime
from microaunet_cli.errors import ExportError
from microaunet_cli.export.parity import Predict

log = logging.getLogger(__name__)

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
    # (network, example input, output path, **options) -> Written
    write: Callable[..., Written]
    load: Callable[[Path], Predict]
    # The ExportSettings fields ``write`` takes as keyword arguments.
    options: tuple[str, ...] = ()

    def write_from(self, settings: Any, model: nn.Module, example: torch.Tensor, path: Path) -> Written:
        """``write`` with this format's own options taken from ``settings``."""
        return self.write(model, example, path, **{name: getattr(settings, name) for name in self.options})


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


# --- ONNX, with a dynamic batch axis: the dynamo exporter first, the TorchScript-based one as fallback.


def _onnx_dynamo(model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    # external_data=False: these networks are tiny, one self-contained file is easier to ship.
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=True,
        opset_version=opset,
        dynamic_shapes=({0: batch_dim()},),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        external_data=False,
        verbose=False,
    )


def _onnx_torchscript(model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    with warnings.catch_warnings():
        # The legacy exporter warns that it is deprecated and that the shape check is traced as a
        # constant; both are expected here (the check only guards eager calls).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )


ONNX_EXPORTERS = {"dynamo": _onnx_dynamo, "torchscript": _onnx_torchscript}


def write_onnx(
    model: nn.Module, example: torch.Tensor, path: Path, opset: int, exporter: str = "auto"
) -> Written:
    """Write ``path``; ``exporter`` is "dynamo", "torchscript" or "auto" (dynamo, then the fallback)."""
    onnx = onnx_runtime.onnx()
    failures = []
    for name in ["dynamo", "torchscript"] if exporter == "auto" else [exporter]:
        try:
            with temp_output(path) as tmp:
                ONNX_EXPORTERS[name](model, example, tmp, opset)
                onnx.checker.check_model(str(tmp))
            return Written(exporter=name, opset=opset)
        except Exception as exc:  # noqa: BLE001 - exporters raise many unrelated types
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            failures.append(f"{name} exporter failed ({reason})")
            log.warning("ONNX %s exporter failed: %s", name, reason)
    raise ExportError(f"could not export to ONNX: {'; '.join(failures)}")


def load_onnx(path: Path) -> Predict:
    sess = onnx_runtime.session(path)
    name = sess.get_inputs()[0].name

    def predict(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(sess.run(None, {name: x.detach().cpu().numpy()})[0])

    return predict


# --- TorchScript by tracing (what C++ libtorch loads). PyTorch deprecates it; kept for old stacks.


def write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Written:
    # Tracing, not scripting: forward() has an optional feature output scripting cannot type. Traced
    # shapes stay symbolic for the batch axis; the parity check at two batch sizes proves it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notice and the traced input-shape check
        traced = torch.jit.trace(model, example, check_trace=False)
        with temp_output(path) as tmp:
            torch.jit.save(traced, str(tmp))
    return Written(exporter="torch.jit.trace")


def load_torchscript(path: Path) -> Predict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), map_location="cpu").eval()
    return module


# --- A torch.export program (.pt2) with a dynamic batch axis: for AOTInductor and ExecuTorch.


def write_program(model: nn.Module, example: torch.Tensor, path: Path) -> Written:
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch_dim()},))
    with temp_output(path) as tmp:
        torch.export.save(program, str(tmp))
    return Written(exporter="torch.export")


def load_program(path: Path) -> Predict:
    return torch.export.load(str(path)).module()


# Adding a format: a writer and a loader above, and one entry here (settings.Format accepts its name).
FORMATS: dict[str, FormatSpec] = {
    "onnx": FormatSpec(".onnx", write_onnx, load_onnx, options=("opset", "exporter")),
    "torchscript": FormatSpec(".torchscript.pt", write_torchscript, load_torchscript),
    "export": FormatSpec(".pt2", write_program, load_program),
}


def get_format(name: str) -> FormatSpec:
    return FORMATS[name]
