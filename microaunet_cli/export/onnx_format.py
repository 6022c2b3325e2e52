"""ONNX with a dynamic batch axis: the dynamo exporter first, the TorchScript-based one as fallback."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from microaunet_cli.export import deps
from microaunet_cli.export.errors import ExportError
from microaunet_cli.export.formats import INPUT_NAME, OUTPUT_NAME, Written, batch_dim, temp_output
from microaunet_cli.export.parity import Predict

log = logging.getLogger(__name__)


def _dynamo(model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    # external_data=False: these networks are tiny, one self-contained file is easier to ship.
    torch.onnx.export(model, (example,), str(path), dynamo=True, opset_version=opset,
                      dynamic_shapes=({0: batch_dim()},), input_names=[INPUT_NAME],
                      output_names=[OUTPUT_NAME], external_data=False, verbose=False)


def _torchscript(model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    with warnings.catch_warnings():
        # The legacy exporter warns that it is deprecated and that the shape check is traced as a
        # constant; both are expected here (the check only guards eager calls).
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})


_EXPORTERS = {"dynamo": _dynamo, "torchscript": _torchscript}


def write(model: nn.Module, example: torch.Tensor, path: Path, opset: int, exporter: str = "auto") -> Written:
    """Write ``path``; ``exporter`` is "dynamo", "torchscript" or "auto" (dynamo, then the fallback)."""
    onnx = deps.onnx()
    failures = []
    for name in (["dynamo", "torchscript"] if exporter == "auto" else [exporter]):
        try:
            with temp_output(path) as tmp:
                _EXPORTERS[name](model, example, tmp, opset)
                onnx.checker.check_model(str(tmp))
            return Written(exporter=name, opset=opset)
        except Exception as exc:  # noqa: BLE001 - exporters raise many unrelated types
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            failures.append(f"{name} exporter failed ({reason})")
            log.warning("ONNX %s exporter failed: %s", name, reason)
    raise ExportError(f"could not export to ONNX: {'; '.join(failures)}")


def session(path: Path, threads: int | None = None, providers: list[str] | None = None):
    """An onnxruntime session; spinning is off so idle ORT threads do not steal cores from others."""
    ort = deps.onnxruntime()
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers or ["CPUExecutionProvider"])


def load(path: Path) -> Predict:
    sess = session(path)
    name = sess.get_inputs()[0].name

    def predict(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(sess.run(None, {name: x.detach().cpu().numpy()})[0])

    return predict
