"""What runs the network for ``predict``: a training checkpoint in torch, or an exported ONNX graph.

Both take uint8 RGB batches at the input size and return probabilities, and both know their input
size, normalisation and threshold, so the prediction loop does not care which it holds.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from microaunet_cli import onnx_runtime
from microaunet_cli.checkpoints import TrainedModel, load_trained
from microaunet_cli.devices import pick_device
from microaunet_cli.errors import CheckpointError, ConfigError
from microaunet_cli.inference.batched import predict_probs
from microaunet_cli.inference.preprocess import normalize_batch
from microaunet_cli.inference.resize import THRESHOLD
from microaunet_cli.models.reparam import inference_copy
from microaunet_cli.onnx_runtime import sidecar_path

log = logging.getLogger(__name__)


class Predictor(Protocol):
    """A trained network ready to predict: its input size, threshold and description, and ``probs``.
    ``TorchRunner`` and ``OnnxRunner`` are the two kinds."""

    input_size: tuple[int, int]  # (height, width)
    threshold: float
    description: str

    def probs(self, images: np.ndarray) -> np.ndarray:
        """``N×h×w×3`` uint8 RGB at ``input_size`` -> ``N×h×w`` float32 probabilities."""


@dataclass
class TorchRunner:
    """A network in torch. It runs a folded copy in eval mode (``inference_copy``: BatchNorm folded into
    the convolutions, training branches merged), the network ``export`` writes: the same function to
    1e-4, about twice as fast for ``microaunet_rt`` on a CPU. The network passed in is left as it is."""

    model: torch.nn.Module
    device: torch.device
    mean: list[float]
    std: list[float]
    input_size: tuple[int, int]
    threshold: float
    description: str

    def __post_init__(self) -> None:
        self.model = inference_copy(self.model)

    def probs(self, images: np.ndarray) -> np.ndarray:
        out = predict_probs(self.model, images, self.mean, self.std, self.device, batch_size=len(images))
        return out[:, 0].cpu().numpy()


@dataclass
class OnnxRunner:
    session: Any  # onnxruntime.InferenceSession
    mean: list[float]
    std: list[float]
    input_size: tuple[int, int]
    threshold: float
    description: str

    def probs(self, images: np.ndarray) -> np.ndarray:
        feed = self.session.get_inputs()[0]
        x = normalize_batch(torch.from_numpy(np.ascontiguousarray(images)), self.mean, self.std).numpy()
        # A graph exported with a fixed batch dimension is fed one chunk of that size at a time.
        step = feed.shape[0] if isinstance(feed.shape[0], int) else len(x)
        dtype = np.float16 if feed.type == "tensor(float16)" else np.float32
        logits = [
            self.session.run(None, {feed.name: x[i : i + step].astype(dtype)})[0]
            for i in range(0, len(x), step)
        ]
        return torch.sigmoid(torch.from_numpy(np.concatenate(logits)).float())[:, 0].numpy()


@dataclass
class FlipAveraged:
    """Flip test-time augmentation around any predictor: the probabilities of the image, of its mirror
    image and of its upside-down image, each flipped back, averaged (three forward passes)."""

    inner: Predictor

    @property
    def input_size(self) -> tuple[int, int]:
        return self.inner.input_size

    @property
    def threshold(self) -> float:
        return self.inner.threshold

    @property
    def description(self) -> str:
        return f"{self.inner.description}, flip TTA"

    def probs(self, images: np.ndarray) -> np.ndarray:
        out = self.inner.probs(images)
        out = out + self.inner.probs(np.ascontiguousarray(images[:, :, ::-1]))[:, :, ::-1]
        out = out + self.inner.probs(np.ascontiguousarray(images[:, ::-1]))[:, ::-1]
        return (out / 3.0).astype(np.float32)


def with_tta(runner: Predictor, tta: bool) -> Predictor:
    return FlipAveraged(runner) if tta else runner


def trained_runner(
    trained: TrainedModel, device: torch.device, threshold: float = THRESHOLD, description: str | None = None
) -> TorchRunner:
    """A trained network as predict and evaluate run it: at its training size, with its own normalisation."""
    return TorchRunner(
        trained.network,
        device,
        trained.mean,
        trained.std,
        (trained.size, trained.size),
        threshold,
        description or f"{trained.name} checkpoint {trained.path} on {device}",
    )


def torch_runner(ckpt: Path, device: str, threshold: float | None) -> TorchRunner:
    dev = pick_device(device)
    return trained_runner(load_trained(ckpt, dev), dev, THRESHOLD if threshold is None else threshold)


def _sidecar_problem(meta: Any) -> str | None:
    """What makes a sidecar unusable, or None."""
    try:
        ok = (
            len(meta["input_size"]) == 2
            and all(int(v) > 0 for v in meta["input_size"])
            and len(meta["mean"]) == 3
            and len(meta["std"]) == 3
        )
    except (KeyError, TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if ok else "input_size needs [H, W]; mean and std three values each"


def read_sidecar(onnx: Path) -> dict[str, Any]:
    """The JSON written beside an exported graph: input size, normalisation, threshold, output kind."""
    path = sidecar_path(onnx)
    if not path.is_file():
        raise CheckpointError(
            f"{path} is missing: an ONNX file needs the sidecar JSON that "
            f"`microaunet export` writes beside it (input size, mean, std)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        meta, problem = None, f"not JSON: {exc}"
    else:
        problem = _sidecar_problem(meta)
    if problem is not None:
        raise CheckpointError(
            f"{path} is not a valid export sidecar ({problem}); "
            f"export the model again with `microaunet export`"
        )
    if meta.get("output", "logits") != "logits":
        raise CheckpointError(
            f"{path}: the graph outputs {meta['output']!r}; predict expects logits "
            f"(export again with `microaunet export`)"
        )
    return meta


def onnx_runner(onnx: Path, device: str, threshold: float | None) -> OnnxRunner:
    if not onnx.is_file():
        raise CheckpointError(f"ONNX file {onnx} does not exist; write one with `microaunet export`")
    meta = read_sidecar(onnx)
    onnx_runtime.onnxruntime("--onnx")  # a clear error when it is not installed
    chosen_providers = onnx_runtime.providers(device)
    try:
        # The thread count torch uses (--threads or OMP_NUM_THREADS).
        session = onnx_runtime.session(onnx, threads=torch.get_num_threads(), providers=chosen_providers)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
        raise CheckpointError(f"ONNX file {onnx} cannot be loaded: {exc}") from None
    h, w = (int(v) for v in meta["input_size"])
    chosen = threshold if threshold is not None else float(meta.get("threshold", THRESHOLD))
    return OnnxRunner(
        session,
        list(meta["mean"]),
        list(meta["std"]),
        (h, w),
        chosen,
        f"ONNX {onnx} ({session.get_providers()[0]})",
    )


def load_runner(
    ckpt: Path | None,
    onnx: Path | None,
    device: str = "auto",
    threshold: float | None = None,
    tta: bool = False,
) -> Predictor:
    """The predictor of a checkpoint or an ONNX file; ``tta`` averages it with its flipped images."""
    if (ckpt is None) == (onnx is None):
        raise ConfigError("give exactly one of --ckpt (a .pt checkpoint) or --onnx (an exported .onnx file)")
    # A file given to the other option is used for what its suffix says it is, as load() does.
    if ckpt is not None and Path(ckpt).suffix.lower() == ".onnx":
        ckpt, onnx = None, Path(ckpt)
    elif onnx is not None and Path(onnx).suffix.lower() == ".pt":
        ckpt, onnx = Path(onnx), None
    if ckpt is not None:
        return with_tta(torch_runner(ckpt, device, threshold), tta)
    return with_tta(onnx_runner(onnx, device, threshold), tta)
