"""``microaunet predict``: polyp masks for your own images, from a checkpoint or an ONNX export."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from microaunet_cli.cli import base
from microaunet_cli.cli.base import console
from microaunet_cli.inference.settings import PredictSettings
from microaunet_cli.progress import progress

if TYPE_CHECKING:
    from microaunet_cli.inference.predict import PredictReport
    from microaunet_cli.inference.video import VideoReport

_opt = partial(base.setting_option, PredictSettings)


def _video(key: str, help: str, *names: str, **kwargs: Any) -> Any:
    """A video option, in its own help panel."""
    return _opt(f"video.{key}", help, *names, rich_help_panel="Video inputs", **kwargs)


def _print_report(report: PredictReport) -> None:
    console.print(
        f"{len(report.predicted)} mask(s) written to [bold]{report.out_dir / 'masks'}[/]; "
        f"areas and confidences in {report.out_dir / 'predictions.csv'}"
    )
    if report.failed:
        console.print(f"[yellow]{len(report.failed)} file(s) skipped:[/]")
        for row in report.failed:
            console.print(f"  {row['error']}", highlight=False, soft_wrap=True)


def _print_video_reports(reports: list[VideoReport]) -> None:
    for r in reports:
        if r.status == "ok":
            console.print(
                f"{r.source.name}: {r.frames} frame(s), {len(r.rows)} predicted, "
                f"{r.end_to_end_fps:.1f} fps end to end, {r.model_fps:.1f} fps model only -> "
                f"[bold]{r.out_dir}[/]",
                highlight=False,
            )
        else:
            console.print(f"[yellow]skipped[/] {r.error}", highlight=False, soft_wrap=True)


@base.command("predict")
def predict_command(
    input: Annotated[
        Path,
        _opt(
            "input",
            "An image or video, or a folder of them (jpg, "
            "jpeg, png, tif, tiff, bmp; mp4, avi, mov, mkv, ...; hidden files ignored).",
            "--input",
            "-i",
        ),
    ],
    out: Annotated[
        Path,
        _opt(
            "out",
            "Output folder (masks/, overlays/, predictions.csv; one <stem>/ folder per video).",
            "--out",
            "-o",
        ),
    ],
    ckpt: Annotated[
        Path | None,
        _opt("ckpt", "Training checkpoint (.pt), or shipped weights by name (see models).", "--ckpt"),
    ] = None,
    onnx: Annotated[
        Path | None, _opt("onnx", "Exported ONNX file (its .json sidecar beside it).", "--onnx")
    ] = None,
    overlay: Annotated[bool | None, _opt("overlay", "Also write outline overlays.", "--overlay")] = None,
    tta: Annotated[
        bool | None,
        _opt(
            "tta", "Flip test-time augmentation: average the image and its two flips (3x the work).", "--tta"
        ),
    ] = None,
    batch_size: Annotated[int | None, _opt("batch_size", "Images per forward pass.")] = None,
    threshold: Annotated[
        float | None, _opt("threshold", "Probability threshold.", unset="the ONNX sidecar's, else 0.5")
    ] = None,
    device: Annotated[
        str | None, _opt("device", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")
    ] = None,
    threads: Annotated[int | None, base.threads_option(PredictSettings, "threads")] = None,
    every: Annotated[int | None, _video("every", "Predict every Nth frame.")] = None,
    start: Annotated[float | None, _video("start", "First second of the clip.")] = None,
    end: Annotated[float | None, _video("end", "End of the clip in seconds.", unset="the end")] = None,
    masks: Annotated[
        str | None, _video("masks", "png (one mask per predicted frame), video (lossless mask.mkv) or none.")
    ] = None,
    codec: Annotated[str | None, _video("codec", "FourCC of the overlay video.")] = None,
    container: Annotated[str | None, _video("container", "Overlay container: mp4, avi, mkv or mov.")] = None,
    area_text: Annotated[
        bool | None, _video("area_text", "Write the polyp area on each overlay frame.", "--area-text")
    ] = None,
    config: base.ConfigOpt = None,
    sets: Annotated[list[str] | None, base.set_option(PredictSettings, "video.every=5")] = None,
    print_config: base.PrintConfigOpt = False,
) -> None:
    """Predict polyp masks at each image's own resolution (PNG, 0 = background, 255 = polyp); for a
    video, an outline overlay video, masks, a per-frame CSV and the speed reached.

    Unreadable files are reported and skipped; the command fails only when nothing could be predicted.
    Ctrl-C on a video leaves its overlay playable with the frames done so far.
    """
    settings = base.resolve_settings(PredictSettings, predict_command, locals())
    base.setup_logging()
    _predict(settings)


def _predict(s: PredictSettings) -> None:
    """The videos among the inputs (each into its own folder), then the images, by the same network."""
    # torch: only once settings are valid
    from microaunet_cli.cpu_threads import use_threads, video_threads
    from microaunet_cli.inference.predict import predict
    from microaunet_cli.inference.video import (
        holds_images,
        list_videos,
        predict_video_source,
        require_inputs,
    )

    # What the network is and how it runs: the same for videos and images.
    network = {
        "ckpt": s.ckpt,
        "onnx": s.onnx,
        "batch_size": s.batch_size,
        "threshold": s.threshold,
        "device": s.device,
        "tta": s.tta,
    }
    require_inputs(s.input)  # nothing to read: one error naming the folder, before loading
    videos = list_videos(s.input)
    if videos:
        use_threads(s.threads, video_threads(), "for videos: the cores less one each for reader and writer")
        # No log lines: predict's own log says what it wrote.
        with progress("videos", log_lines=False) as bar:
            reports = predict_video_source(
                s.input, s.out, settings=s.video, on_start=bar.start, advance=bar.advance, **network
            )
        _print_video_reports(reports)
        if not holds_images(s.input):
            return
    else:
        use_threads(s.threads)
    with progress("predicting", log_lines=False) as bar:
        report = predict(
            s.input, s.out, overlay=s.overlay, on_start=bar.start, advance=bar.advance, **network
        )
    _print_report(report)
