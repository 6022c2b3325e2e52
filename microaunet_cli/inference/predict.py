"""``predict``: masks (and optional overlays) for photographs at their own resolution.

Each image is read as RGB, resized to the network's input size the way prepare-data resizes,
run in batches, and its probability map resized back (bilinear) to the original resolution before
thresholding. A file that cannot be read is reported and skipped; the others are still written.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microaunet_cli.data.io import IMAGE_SUFFIXES, read_image
from microaunet_cli.errors import DataError
from microaunet_cli.fileio import write_csv, write_json_atomic
from microaunet_cli.inference.resize import to_input_size, to_original_size
from microaunet_cli.inference.runners import Predictor, load_runner
from microaunet_cli.overlays import draw_overlay, write_png

log = logging.getLogger(__name__)

COLUMNS = (
    "file",
    "status",
    "mask",
    "width",
    "height",
    "polyp_pixels",
    "polyp_fraction",
    "mean_confidence",
    "error",
)
Progress = Callable[[int], None]


@dataclass
class PredictReport:
    out_dir: Path
    rows: list[dict[str, Any]]
    model: str

    @property
    def predicted(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "ok"]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] != "ok"]


def list_images(source: Path) -> list[Path]:
    """The image files to predict: ``source`` itself, or the images directly inside a folder."""
    if source.is_file():
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{source} is not an image file; use one of {', '.join(IMAGE_SUFFIXES)}")
        return [source]
    if not source.is_dir():
        raise DataError(f"--input {source} does not exist; pass an image file or a folder of images")
    found = sorted(
        p
        for p in source.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not found:
        raise DataError(
            f"--input {source} holds no images ({', '.join(IMAGE_SUFFIXES)}; hidden files ignored)"
        )
    return found


def output_names(paths: list[Path]) -> list[str]:
    """``<stem>.png`` per input; ``a.jpg`` beside ``a.png`` would collide, so those keep their suffix."""
    stems = Counter(p.stem for p in paths)
    return [f"{p.stem}_{p.suffix[1:].lower()}.png" if stems[p.stem] > 1 else f"{p.stem}.png" for p in paths]


def _read(path: Path) -> np.ndarray | str:
    """The image, or the reason it cannot be used (a message naming the file)."""
    try:
        return read_image(path, greyscale="replicate")  # a grey photograph still gets a mask, with a warning
    except DataError as exc:
        return str(exc)


def _mask_row(path: Path, name: str, prob: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    area = int(mask.sum())
    return {
        "file": path.name,
        "status": "ok",
        "mask": f"masks/{name}",
        "width": mask.shape[1],
        "height": mask.shape[0],
        "polyp_pixels": area,
        "polyp_fraction": area / mask.size,
        # Undefined without a predicted polyp: left empty rather than a misleading 0.
        "mean_confidence": float(prob[mask].mean()) if area else "",
        "error": "",
    }


def _save(out: Path, name: str, image: np.ndarray, mask: np.ndarray, row: dict, overlay: bool) -> None:
    write_png(out / "masks" / name, mask.astype(np.uint8) * 255)
    if overlay:
        conf = f"  confidence {row['mean_confidence']:.2f}" if row["mean_confidence"] != "" else ""
        caption = f"{row['file']}  polyp {row['polyp_fraction']:.1%}{conf}"
        write_png(out / "overlays" / name, draw_overlay(image, mask, None, caption))


def full_size_probs(runner: Predictor, images: list[np.ndarray]) -> list[np.ndarray]:
    """Probability maps at each RGB image's own size: resampled to the input size as prepare-data
    resamples, run as one batch, resized back bilinearly. The one image-to-probabilities path of
    ``predict``, the Python API and (split across its threads) video."""
    h, w = runner.input_size
    probs = runner.probs(np.stack([to_input_size(image, h, w) for image in images]))
    return [to_original_size(small, *image.shape[:2]) for image, small in zip(images, probs)]


def _predict_batch(
    runner: Predictor, batch: list[tuple[Path, str]], out: Path, overlay: bool
) -> list[dict[str, Any]]:
    """One row per file of the batch, in batch order; unreadable files are reported, not raised."""
    rows: list[dict[str, Any]] = [{} for _ in batch]
    readable: list[tuple[int, np.ndarray]] = []
    for i, (path, _) in enumerate(batch):
        image = _read(path)
        if isinstance(image, str):
            log.warning("skipped: %s", image)
            rows[i] = {"file": path.name, "status": "unreadable", "error": image}
        else:
            readable.append((i, image))
    if not readable:
        return rows
    probs = full_size_probs(runner, [image for _, image in readable])
    for (i, image), prob in zip(readable, probs):
        path, name = batch[i]
        mask = prob > runner.threshold  # strict, as mask_at_size (evaluate) and the export sidecar
        rows[i] = _mask_row(path, name, prob, mask)
        _save(out, name, image, mask, rows[i], overlay)
    return rows


def predict_images(
    runner: Predictor,
    paths: list[Path],
    out: Path,
    batch_size: int = 8,
    overlay: bool = False,
    advance: Progress | None = None,
) -> list[dict[str, Any]]:
    """Predict every path in batches; one row per path, in input order (unreadable ones included)."""
    named = list(zip(paths, output_names(paths)))
    rows: list[dict[str, Any]] = []
    for start in range(0, len(named), batch_size):
        batch = named[start : start + batch_size]
        rows += _predict_batch(runner, batch, out, overlay)
        if advance is not None:
            advance(len(batch))
    return rows


def _write_reports(report: PredictReport, source: Path, runner: Predictor) -> None:
    write_csv(report.out_dir / "predictions.csv", report.rows, COLUMNS)
    write_json_atomic(
        report.out_dir / "summary.json",
        {
            "model": runner.description,
            "input": str(source),
            "input_size": list(runner.input_size),
            "threshold": runner.threshold,
            "n_images": len(report.rows),
            "n_predicted": len(report.predicted),
            "unreadable": [{"file": r["file"], "error": r["error"]} for r in report.failed],
        },
    )


def predict(
    source: str | Path,
    out_dir: str | Path,
    ckpt: str | Path | None = None,
    onnx: str | Path | None = None,
    batch_size: int = 8,
    threshold: float | None = None,
    device: str = "auto",
    overlay: bool = False,
    on_start: Callable[[int], None] | None = None,
    advance: Progress | None = None,
    tta: bool = False,
) -> PredictReport:
    """Write ``masks/<stem>.png`` (0/255), optional ``overlays/``, ``predictions.csv`` and ``summary.json``.

    Raises :class:`DataError` (after writing the reports) only when no image could be predicted.
    """
    source, out = Path(source), Path(out_dir)
    paths = list_images(source)  # before loading the model: a wrong --input fails at once
    runner = load_runner(Path(ckpt) if ckpt else None, Path(onnx) if onnx else None, device, threshold, tta)
    log.info("predicting %d image(s) with %s", len(paths), runner.description)
    if on_start is not None:
        on_start(len(paths))
    rows = predict_images(runner, paths, out, batch_size, overlay, advance)
    report = PredictReport(out, rows, runner.description)
    _write_reports(report, source, runner)
    if not report.predicted:
        raise DataError(
            f"none of the {len(rows)} image(s) in {source} could be read; "
            f"the reasons are in {out / 'predictions.csv'}"
        )
    return report
