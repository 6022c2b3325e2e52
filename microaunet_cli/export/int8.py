"""Static INT8 quantisation of an ONNX export (ONNX Runtime), and the check that its masks agree.

Static quantisation fixes every activation's scale from calibration images before deployment, so
the quantised graph runs integer convolutions end to end on a CPU. The calibration images must look
like what the network will see: they come from the checkpoint's prepared training split, normalised
as in training, resampled to the exported input size when the data was prepared at another. The
check then thresholds the INT8 and fp32 outputs on the validation split and compares the masks image
by image. A prepared folder other than the checkpoint's own goes through evaluate's data identity
check first: one that divides the images otherwise could hold the checkpoint's test images in its
train and val splits.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import torch

from microaunet_cli.errors import ConfigError, DataError, ExportError
from microaunet_cli.evaluation.data_check import check_evaluation_data
from microaunet_cli.export.formats import temp_output
from microaunet_cli.inference.preprocess import normalize_batch
from microaunet_cli.inference.resize import THRESHOLD, to_input_size
from microaunet_cli.onnx_runtime import INSTALL_HINT, session

log = logging.getLogger(__name__)

# Calibration and checking batch; small enough to keep memory flat at 256² and above.
BATCH = 16


@dataclass(frozen=True)
class Int8Agreement:
    """How the INT8 masks compare with the fp32 ones on one split (thresholded at 0.5), and, given the
    ground truth, how accurate each file is (mDice at the network's size)."""

    split: str
    n_images: int
    mean_dice: float  # per image, then the mean; two empty masks agree perfectly
    min_dice: float
    fp32_mdice: float | None = None
    int8_mdice: float | None = None

    @property
    def mdice_drop(self) -> float | None:
        if self.fp32_mdice is None or self.int8_mdice is None:
            return None
        return self.fp32_mdice - self.int8_mdice

    def as_dict(self) -> dict:
        return asdict(self)


def quantization_module() -> ModuleType:
    """``onnxruntime.quantization``, or an error that says how to get it."""
    try:
        from onnxruntime import quantization
    except ImportError:
        raise ConfigError(
            "--int8 needs onnxruntime with its quantization tools (onnxruntime.quantization), "
            f"which is not installed: {INSTALL_HINT}"
        ) from None
    return quantization


def normalized_batches(images: np.ndarray, mean, std, batch: int = BATCH) -> Iterator[np.ndarray]:
    """N×H×W×3 uint8 images -> float32 network inputs, ``batch`` at a time."""
    for start in range(0, len(images), batch):
        chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + batch]))
        yield normalize_batch(chunk, mean, std).numpy()


def images_at(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """N×H×W×3 uint8 images at the exported ``size`` (H, W), resampled as prepare-data resamples."""
    if images.shape[1:3] == tuple(size):
        return images
    return np.stack([to_input_size(im, *size) for im in images]) if len(images) else images


def masks_at(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """N×H×W masks at ``size`` (nearest neighbour: they stay binary)."""
    if masks.shape[1:3] == tuple(size):
        return masks
    h, w = size
    return np.stack([cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) for m in masks])


def check_calibration_data(
    identity: dict | None, prepared: object, fold: int | None, folder: Path, explicit: bool
) -> str:
    """evaluate's data identity check applied to the train and val splits that calibrate and gate the
    INT8 file; returns its note for the sidecar."""
    try:
        return check_evaluation_data(identity, prepared, fold, folder, explicit, ["train", "val"])
    except DataError as exc:
        why = str(exc).split(": its test images")[0]
        raise DataError(
            f"--int8: {why}: its train and val splits, which calibrate and gate the INT8 file, may hold "
            f"the checkpoint's test images. Pass --data-dir the folder prepared with the checkpoint's "
            f"--split and --seed, or leave --data-dir out to use the checkpoint's own"
        ) from None


def pick_calibration(images: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` training images drawn without replacement (fixed seed: the same file every time)."""
    if n >= len(images):
        return images
    idx = np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False))
    return images[idx]


# How activation ranges are read from the calibration outputs (onnxruntime CalibrationMethod names).
METHODS = {
    "minmax": ("MinMax", {}),
    "percentile": ("Percentile", {"CalibPercentile": 99.99}),
    "entropy": ("Entropy", {}),
}


def quantize(fp32: Path, out: Path, calibration: list[np.ndarray], method: str = "minmax") -> None:
    """Write the statically quantised ``out`` from ``fp32``, calibrated on the given input batches.

    QDQ format, int8 weights per output channel and uint8 activations: the combination ONNX
    Runtime's CPU kernels run fastest, and per-channel weights keep the depthwise convs (whose
    channels differ widely in scale once BatchNorm is folded in) accurate. ``method`` picks how the
    activation ranges are set: min-max of the calibration outputs, their 99.99th percentile, or the
    entropy criterion (histogram methods need equal batches: feed one image at a time).
    """
    q = quantization_module()
    calib_name, extra = METHODS[method]
    name = _input_name(fp32)

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(calibration)

        def get_next(self) -> dict | None:
            batch = next(self._batches, None)
            return None if batch is None else {name: batch}

    with tempfile.TemporaryDirectory(prefix="microaunet-int8-") as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        # Shape inference and constant folding first, as onnxruntime recommends before quantising.
        q.quant_pre_process(str(fp32), str(prepped), skip_symbolic_shape=True)
        _unshare_initializers(prepped)
        # The calibrators print their settings to stdout; the command says what it did itself.
        with temp_output(out) as target, contextlib.redirect_stdout(io.StringIO()):
            q.quantize_static(
                str(prepped),
                str(target),
                Reader(),
                quant_format=q.QuantFormat.QDQ,
                per_channel=True,
                activation_type=q.QuantType.QUInt8,
                weight_type=q.QuantType.QInt8,
                calibrate_method=getattr(q.CalibrationMethod, calib_name),
                extra_options=extra,
            )


def _unshare_initializers(path: Path) -> None:
    """Give every node its own copy of each weight it reads.

    MALUNet's and the students' bridges apply one spatial-attention conv to several skips, so the
    graph reuses that weight; ONNX Runtime's QDQ quantiser refuses shared weights ("shared mode is
    not supported for weight"). Copies of a 2×7×7 kernel cost nothing.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    seen: dict[str, int] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name not in inits:
                continue
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}__use{seen[name]}"
                graph.initializer.append(copy)
                node.input[i] = copy.name
    onnx.save(model, str(path))


def _input_name(path: Path) -> str:
    return session(path).get_inputs()[0].name


def mask_agreement(
    fp32: Path, int8: Path, batches: Iterator[np.ndarray], split: str, masks: np.ndarray | None = None
) -> Int8Agreement:
    """Per-image Dice between the masks of the two files over every batch; with ``masks`` (the split's
    N×H×W ground truth, in batch order) also each file's mDice against it."""
    ref, new = session(fp32), session(int8)
    name = ref.get_inputs()[0].name
    dices: list[float] = []
    accuracy: dict[str, list[float]] = {"fp32": [], "int8": []}
    for x in batches:
        a = ref.run(None, {name: x})[0] > 0.0  # logit > 0 is probability > 0.5
        b = new.run(None, {name: x})[0] > 0.0
        if masks is not None:
            truth = np.asarray(masks[len(dices) : len(dices) + len(x)], dtype=bool)[:, None]
            accuracy["fp32"].extend(_dice_per_image(a, truth))
            accuracy["int8"].extend(_dice_per_image(b, truth))
        dices.extend(_dice_per_image(a, b))
    if not dices:
        raise ExportError(f"the {split} split is empty: nothing to check the INT8 model on")
    fp32_mdice, int8_mdice = (float(np.mean(v)) if v else None for v in accuracy.values())
    return Int8Agreement(
        split, len(dices), float(np.mean(dices)), float(np.min(dices)), fp32_mdice, int8_mdice
    )


def _dice_per_image(a: np.ndarray, b: np.ndarray) -> list[float]:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    inter = (a & b).sum(axis=1)
    total = a.sum(axis=1) + b.sum(axis=1)
    return [1.0 if t == 0 else 2.0 * i / t for i, t in zip(inter.tolist(), total.tolist())]


def require_agreement(
    result: Int8Agreement, min_dice: float, what: Path, max_mdice_drop: float | None = None
) -> None:
    fixes = (
        "the file was removed. Try more calibration images (--calibration-images N), another range "
        "method (--set calibration_method=minmax|entropy), or ship the fp32 model"
    )
    drop = result.mdice_drop
    if max_mdice_drop is not None and drop is not None and drop > max_mdice_drop:
        raise ExportError(
            f"INT8 model {what} is less accurate than fp32: validation mDice {result.int8_mdice:.4f} "
            f"against {result.fp32_mdice:.4f} on {result.n_images} {result.split} images, "
            f"{drop:.4f} lower (at most {max_mdice_drop:g} allowed); {fixes}"
        )
    if result.mean_dice < min_dice:
        raise ExportError(
            f"INT8 model {what} disagrees with fp32: mean Dice between their masks (> {THRESHOLD}) on "
            f"{result.n_images} {result.split} images is {result.mean_dice:.4f} < {min_dice:g} "
            f"(worst image {result.min_dice:.4f}); {fixes}"
        )
