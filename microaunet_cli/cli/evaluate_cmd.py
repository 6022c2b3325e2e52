"""``microaunet evaluate``: score a checkpoint on a prepared split, in both metric conventions."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from rich.table import Table

from microaunet_cli.cli import base
from microaunet_cli.cli.base import console
from microaunet_cli.evaluation.settings import EvaluateSettings

if TYPE_CHECKING:
    from microaunet_cli.evaluation.evaluate import EvaluationSummary

_opt = partial(base.setting_option, EvaluateSettings)


def _table(
    title: str,
    splits: dict[str, dict[str, Any]],
    section: str,
    columns: dict[str, str],
    resolution: bool = True,
) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("split", style="bold")
    table.add_column("images", justify="right")
    for label in columns.values():
        table.add_column(label, justify="right")
    if resolution:
        table.add_column("resolution")
    for split, result in splits.items():
        values = [f"{result[section][key]:.4f}" for key in columns]
        table.add_row(
            split, str(result["n_images"]), *values, *([result.get("resolution", "")] if resolution else [])
        )
    return table


def _resized_table(summary: EvaluationSummary) -> Table | None:
    resized = {s: r["resized"] for s, r in summary.splits.items() if "resized" in r}
    if not resized:
        return None
    return _table(
        "Against the resized square masks (biased upward; not comparable with papers)",
        resized,
        "per_image",
        {"mdice": "mDice", "miou": "mIoU"},
    )


def print_summary(summary: EvaluationSummary) -> None:
    console.print(
        _table(
            "Per-image mean (PraNet convention, headline)",
            summary.splits,
            "per_image",
            {"mdice": "mDice", "miou": "mIoU", "mae": "MAE"},
        )
    )
    console.print(
        _table(
            "Pooled confusion matrix (MALUNet convention)",
            summary.splits,
            "pooled",
            {
                "dice": "Dice (F1)",
                "iou": "IoU",
                "accuracy": "Accuracy",
                "sensitivity": "Sensitivity",
                "specificity": "Specificity",
            },
            resolution=False,
        )
    )
    resized = _resized_table(summary)
    if resized is not None:
        console.print(resized)
    for split, result in summary.splits.items():
        if result.get("resolution") != "original":
            console.print(
                f"[yellow]{split} is scored at the {result['resolution']} resolution[/]: its folder has "
                f"no original masks; re-run prepare-data with --force to keep them"
            )
    for item in summary.skipped:
        console.print(f"[yellow]skipped[/] {item['file']}: {item['reason']}", highlight=False, soft_wrap=True)
    console.print(
        f"threshold {summary.threshold}; results in [bold]{summary.out_dir}[/] "
        f"(summary.json, per_case.csv, overlays/)"
    )


@base.command("evaluate")
def evaluate_command(
    ckpt: Annotated[
        Path,
        _opt(
            "ckpt",
            "Checkpoint to evaluate (best.pt or last.pt of a run), or shipped weights by name.",
            "--ckpt",
        ),
    ],
    split: Annotated[str | None, _opt("split", "Prepared split; 'test' evaluates every test split.")] = None,
    data_dir: Annotated[
        Path | None, _opt("data_dir", "Prepared data folder.", unset="the one the checkpoint was trained on")
    ] = None,
    out: Annotated[Path | None, _opt("out", "Output folder.", unset="<run folder>/eval-<split>")] = None,
    device: Annotated[
        str | None, _opt("device", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")
    ] = None,
    batch_size: Annotated[int | None, _opt("batch_size", "Images per forward pass.")] = None,
    worst: Annotated[
        int | None, _opt("worst", "Write overlays of the K lowest-Dice cases (0: none).")
    ] = None,
    external: Annotated[
        Path | None,
        _opt(
            "external",
            "Score a labelled folder never trained on (images/ + masks/, or N.ext + pN.ext) "
            "instead of a prepared split.",
        ),
    ] = None,
    skip_bad: Annotated[
        bool | None,
        _opt(
            "skip_bad",
            "--external: leave out unmatched or unreadable files (listed) instead of stopping.",
            "--skip-bad",
        ),
    ] = None,
    tta: Annotated[
        bool | None,
        _opt(
            "tta", "Flip test-time augmentation: average each image and its two flips (3x the work).", "--tta"
        ),
    ] = None,
    threads: Annotated[int | None, base.threads_option(EvaluateSettings, "threads")] = None,
    config: base.ConfigOpt = None,
    sets: Annotated[list[str] | None, base.set_option(EvaluateSettings, "batch_size=8")] = None,
    print_config: base.PrintConfigOpt = False,
) -> None:
    """Evaluate a checkpoint: per-image mDice/mIoU/MAE and pooled Dice/IoU/accuracy/sensitivity/specificity,
    against each ground truth at its original resolution.

    Needs only the checkpoint: the network, its settings, the input size and the normalisation come
    from it. --external scores a labelled folder it never trained on. Writes summary.json,
    per_case.csv and overlays of the worst cases.
    """
    s = base.resolve_settings(EvaluateSettings, evaluate_command, locals())
    base.setup_logging()
    from microaunet_cli.cpu_threads import use_threads  # torch: only once settings are valid
    from microaunet_cli.evaluation.evaluate import evaluate_checkpoint

    use_threads(s.threads)
    summary = evaluate_checkpoint(
        s.ckpt,
        split=s.split,
        data_dir=s.data_dir,
        out_dir=s.out,
        device=s.device,
        batch_size=s.batch_size,
        worst=s.worst,
        external=s.external,
        skip_bad=s.skip_bad,
        tta=s.tta,
    )
    print_summary(summary)
