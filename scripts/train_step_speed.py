"""Time training steps as the loop runs them (augmentation, normalisation, objective, backward,
optimiser) on random batches: the median of N steps, for train-teacher or distill at either stage.

    python scripts/train_step_speed.py teacher 128 --steps 30
    python scripts/train_step_speed.py distill 256 --stage 2 --threads 2
    python scripts/train_step_speed.py distill 192 --config configs/polyp_laptop.yaml

``--config`` takes a recipe's loss, weight average (updated after each step, as the loop does),
augmentation and distillation settings from a settings file; without it, the code's defaults.

Compare two versions of the toolkit by running it from each checkout in turn, interleaved, with no
other job on the machine (docs/RESULTS.md, "Training speed"). It runs in checkouts back to d037399
(the release before the training-speed work): what an older checkout lacks (a loss choice, the
weight average, the allocator setting) is left out there, and the recipe must then be the default.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import time
from pathlib import Path

import torch

from microaunet_cli.checkpoints import build_model
from microaunet_cli.config import RunSettings, load_settings
from microaunet_cli.devices import autocast
from microaunet_cli.inference.preprocess import standardize
from microaunet_cli.training.augment import augment_batch
from microaunet_cli.training.distillation import DistillationObjective
from microaunet_cli.training.objectives import SegmentationObjective, StepContext
from microaunet_cli.training.optim import build_optimizer

try:  # what older checkouts lack
    from microaunet_cli.training.ema import WeightAverage
except ImportError:
    WeightAverage = None
try:
    from microaunet_cli.cpu_memory import keep_freed_memory
except ImportError:
    keep_freed_memory = None

EPOCHS = 40  # a 40-epoch run: stage 1 is epochs 0-23, stage 2 from 24


def objective(kind: str, s: RunSettings) -> torch.nn.Module:
    loss = getattr(s.train, "loss", "bce_dice")
    if kind == "teacher":
        if "loss" in inspect.signature(SegmentationObjective).parameters:
            return SegmentationObjective(build_model(s), loss)
        assert loss == "bce_dice", "this checkout has only the BCE + Dice loss"
        return SegmentationObjective(build_model(s))
    teacher = build_model(s)
    s = s.model_copy(deep=True)
    s.model.name = "microaunet_rt"
    if "seg_loss" in inspect.signature(DistillationObjective).parameters:
        return DistillationObjective(build_model(s), teacher, s.distill, EPOCHS, seg_loss=loss)
    assert loss == "bce_dice", "this checkout has only the BCE + Dice loss"
    return DistillationObjective(build_model(s), teacher, s.distill, EPOCHS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["teacher", "distill"])
    ap.add_argument("size", type=int)
    ap.add_argument("--stage", type=int, choices=[1, 2], default=1, help="distill: which stage")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast")
    ap.add_argument("--contiguous", action="store_true", help="NCHW instead of channels-last")
    ap.add_argument("--compile", action="store_true", help="torch.compile the objective (train.compile)")
    ap.add_argument("--config", type=Path, help="settings file of the recipe to time")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if keep_freed_memory is not None:  # as the training loop does on a CPU
        keep_freed_memory()
    torch.manual_seed(0)
    settings = load_settings(RunSettings, config=args.config, environ={}) if args.config else RunSettings()
    obj = objective(args.kind, settings)
    fmt = torch.contiguous_format if args.contiguous else torch.channels_last
    obj = obj.to(memory_format=fmt)
    if hasattr(obj, "teacher"):
        obj.teacher.to(memory_format=fmt)
    opt = build_optimizer(obj.parameters(), settings.optim)
    run_objective = torch.compile(obj) if args.compile else obj
    aug = settings.augment
    ema_decay = getattr(settings.train, "ema_decay", 0.0)
    ema = WeightAverage(obj.model, ema_decay) if ema_decay else None
    images = torch.randint(0, 255, (64, args.size, args.size, 3), dtype=torch.uint8)
    masks = (torch.rand(64, args.size, args.size) > 0.7).to(torch.uint8)
    epoch = 0 if args.stage == 1 else EPOCHS - 1

    def step(i: int) -> None:
        sl = slice((i * args.batch) % 64, (i * args.batch) % 64 + args.batch)
        x = images[sl].permute(0, 3, 1, 2).float().div_(255.0)
        y = masks[sl].unsqueeze(1).float()
        g = torch.Generator().manual_seed(i)
        x, y = augment_batch(x, y, aug, g)
        x = standardize(x, (0.5,) * 3, (0.25,) * 3).contiguous(memory_format=fmt)
        with autocast("cpu", torch.bfloat16 if args.bf16 else None):
            loss, _ = run_objective(x, y, StepContext(epoch=epoch, progress=float(epoch), generator=g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update()

    for i in range(5):
        step(i)
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1000
    row = {**vars(args), "config": str(args.config), "ms": round(ms, 1)}
    print(json.dumps({**row, "images_per_s": round(args.batch * 1000 / ms, 1)}))


if __name__ == "__main__":
    main()
