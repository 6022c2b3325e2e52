"""The toolkit from Python: load a trained network, segment images, arrays and videos, run distillation.

Everything here goes through the code the commands use (``predict``'s image path, its video pipeline,
the training runner), so a mask from the API equals the mask the command writes::

    import microaunet_cli as mu

    seg = mu.load("runs/kvasir-microaunet-distill/checkpoints/best.pt")   # or "model.onnx"
    mask = seg.predict(rgb)                        # H×W bool at the image's own size
    mask, probs = seg.predict(rgb, return_probs=True)
    seg.predict_video("exam.mp4", "exam-out/")     # overlay, masks, per-frame CSV, FPS summary
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
from pydantic import ValidationError

from microaunet_cli.config import RunSettings, load_settings
from microaunet_cli.config.presets import DISTILL_PRESET
from microaunet_cli.errors import ConfigError, DataError
from microaunet_cli.inference.predict import full_size_probs
from microaunet_cli.inference.runners import Predictor, load_runner
from microaunet_cli.inference.settings import VideoSettings
from microaunet_cli.inference.video import VideoReport, predict_video
from microaunet_cli.training.summary import TrainingSummary

__all__ = ["DistillResult", "Segmenter", "VideoReport", "VideoSettings", "load", "run_distillation"]


def _check_image(image: Any, where: str) -> np.ndarray:
    if isinstance(image, np.ndarray) and image.ndim == 3 and 0 in image.shape[:2]:
        raise DataError(
            f"{where}: an empty image ({image.shape[0]}×{image.shape[1]} pixels); nothing to segment"
        )
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = (
            f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
            if isinstance(image, np.ndarray)
            else type(image).__name__
        )
        raise DataError(
            f"{where}: expected an RGB uint8 array of shape H×W×3, got {got}; "
            f"convert with np.asarray(pil_image.convert('RGB')) or cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)"
        )
    return image


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


def _check_threshold(threshold: Any) -> None:
    """A probability strictly between 0 and 1: at 0 or below every pixel is polyp, at 1 or above none."""
    if threshold is None:
        return
    number = isinstance(threshold, (float, int, np.floating, np.integer)) and not isinstance(threshold, bool)
    if not number or not 0 < threshold < 1:
        raise ConfigError(
            f"threshold must be a probability between 0 and 1 (exclusive), got {threshold!r}; "
            f"leave it None for the checkpoint's or sidecar's own (0.5 unless exported otherwise)"
        )


class Segmenter:
    """A trained network ready to segment: made by :func:`load`, holding its input size,
    normalisation and threshold (from the checkpoint or the ONNX sidecar)."""

    def __init__(self, runner: Predictor) -> None:
        self.runner = runner

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the network runs at; images of any size are resampled to it and back."""
        return self.runner.input_size

    @property
    def threshold(self) -> float:
        """Probability above which a pixel is polyp."""
        return self.runner.threshold

    def __repr__(self) -> str:
        return f"Segmenter({self.runner.description}, threshold {self.threshold})"

    @overload
    def predict(self, image: np.ndarray, return_probs: bool = False) -> np.ndarray: ...
    @overload
    def predict(self, image: np.ndarray, return_probs: bool = True) -> tuple[np.ndarray, np.ndarray]: ...

    def predict(
        self, image: np.ndarray, return_probs: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The polyp mask of one RGB ``uint8`` H×W×3 image: an H×W bool array at the image's own size;
        with ``return_probs`` also the H×W float32 probabilities it was thresholded from."""
        return self.predict_batch([image], return_probs=return_probs)[0]

    def predict_batch(
        self, images: Sequence[np.ndarray], batch_size: int = 8, return_probs: bool = False
    ) -> list[np.ndarray] | list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`predict` for many images (of any sizes), ``batch_size`` per forward pass; results in
        input order."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            raise DataError(
                f"predict_batch takes a list of images (or an N×H×W×3 array), got one {images.shape} "
                f"array; for a single image call predict(image)"
            )
        batch_size = _positive_int(batch_size, "batch_size")
        checked = [_check_image(im, f"image {i}") for i, im in enumerate(images)]
        results: list = []
        for start in range(0, len(checked), batch_size):
            for prob in full_size_probs(self.runner, checked[start : start + batch_size]):
                mask = prob > self.threshold  # strict, as predict
                results.append((mask, prob) if return_probs else mask)
        return results

    def predict_video(
        self,
        src: str | Path,
        out: str | Path,
        batch_size: int = 8,
        settings: VideoSettings | Mapping[str, Any] | None = None,
        **options: Any,
    ) -> VideoReport:
        """Segment a video file as ``microaunet predict --input VIDEO`` does, into the folder ``out``:
        ``overlay.mp4``, ``masks/`` (or ``mask.mkv``), ``frames.csv`` and ``summary.json``.

        Options are :class:`VideoSettings` fields (``every``, ``start``, ``end``, ``masks``, ``codec``,
        ``container``, ``area_text``), as keywords or in ``settings``. The report holds one row per
        predicted frame and the end-to-end and model-only FPS. Raises :class:`DataError` naming the file
        when the video cannot be read or written, :class:`PredictionError` when the network fails on it
        (out of memory, say); Ctrl-C leaves the frames done so far, playable.

        On a CPU with few cores, do what the command does before :func:`load`:
        ``torch.set_num_threads(microaunet_cli.cpu_threads.video_threads())``, which leaves a core each
        to the reader and the writer (on 2 cores, 35% more frames a second for the default student).
        """
        batch_size = _positive_int(batch_size, "batch_size")
        values = dict(settings.model_dump() if isinstance(settings, VideoSettings) else settings or {})
        try:
            video = VideoSettings(**{**values, **options})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(
                f"predict_video: {problems}; its options are {', '.join(VideoSettings.model_fields)}"
            ) from None
        return predict_video(self.runner, Path(src), Path(out), video, batch_size)


def load(
    path: str | Path, device: str = "auto", threshold: float | None = None, tta: bool = False
) -> Segmenter:
    """A :class:`Segmenter` from a training checkpoint (``.pt``), shipped weights by name (see
    ``microaunet models``, e.g. ``load("microaunet_rt-polyp")``), or an exported ONNX file (``.onnx``,
    with the ``.json`` sidecar ``microaunet export`` writes beside it).

    ``device``: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps. ``threshold``: None keeps
    the sidecar's, else 0.5. ``tta``: flip test-time augmentation (the image and its two flips
    averaged; three forward passes).
    """
    _check_threshold(threshold)
    # load_runner takes an .onnx given as the checkpoint for the export it is.
    return Segmenter(load_runner(Path(path), None, device, threshold, tta))


@dataclass
class DistillResult:
    """The summaries ``train-teacher`` and ``distill`` write (``teacher`` None when it was reused)."""

    teacher_checkpoint: Path
    student: TrainingSummary
    teacher: TrainingSummary | None = None

    @property
    def student_checkpoint(self) -> Path:
        return self.student.checkpoint_best


def _as_settings(
    settings: RunSettings | Mapping[str, Any] | str | Path, preset: Mapping[str, Any] | None
) -> RunSettings:
    if isinstance(settings, RunSettings):
        return settings.model_copy(deep=True)
    if isinstance(settings, (str, Path)):
        return load_settings(RunSettings, config=Path(settings), preset=preset)
    return load_settings(RunSettings, preset=preset, options=_dotted(settings))


def _dotted(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(_dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _teacher_settings(student: RunSettings) -> RunSettings:
    """The student's data, schedule and device for the teacher, with the teacher network and its own
    default run folder (where ``distill`` looks for it)."""
    from microaunet_cli.training.runner import teacher_model

    values = student.model_dump()
    values["model"] = {"name": teacher_model()}
    values["output"]["name"] = None
    values["distill"]["teacher"] = None
    return RunSettings.model_validate(values)


def run_distillation(
    settings: RunSettings | Mapping[str, Any] | str | Path,
    teacher_settings: RunSettings | Mapping[str, Any] | str | Path | None = None,
    retrain_teacher: bool = False,
) -> DistillResult:
    """The whole ``distill`` workflow for scripts: train the teacher unless its checkpoint exists, then
    distil the student under it. Both runs are ``train_teacher`` / ``distill`` of the training runner,
    run folders and all.

    ``settings`` are the student's (a :class:`RunSettings`, a nested dict such as
    ``{"data": {"dataset": "kvasir"}, "train": {"epochs": 40}}``, or a YAML file as for ``--config``;
    the model defaults to ``distill``'s). The teacher checkpoint is ``distill.teacher`` or the default
    ``runs/<dataset>-malunet/checkpoints/best.pt``; when it is missing (or ``retrain_teacher``) it is
    trained first, with ``teacher_settings`` or else the student's settings with the teacher network.
    The data must already be prepared (``microaunet prepare-data``).
    """
    from microaunet_cli.training.runner import default_teacher_path, distill, train_teacher

    student = _as_settings(settings, DISTILL_PRESET)
    ckpt = Path(student.distill.teacher or default_teacher_path(student))
    teacher_summary = None
    if retrain_teacher or not ckpt.is_file():
        teacher = (
            _as_settings(teacher_settings, None)
            if teacher_settings is not None
            else _teacher_settings(student)
        )
        teacher_summary = train_teacher(teacher)
        ckpt = teacher_summary.checkpoint_best
    student.distill.teacher = ckpt
    return DistillResult(ckpt, distill(student), teacher_summary)
