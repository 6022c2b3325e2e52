"""The one training loop. Teacher training and distillation differ only by the objective.

Per epoch: shuffle (fixed by seed and epoch) -> batches on the device -> augment -> normalise ->
objective (under autocast) -> backward -> step; then validate, checkpoint, log. SIGTERM/SIGUSR1 save
``last.pt`` and stop cleanly; a non-finite loss stops with the last good checkpoint intact.

Scores (validation, and the summary's test scores) are computed in float32 whatever ``--amp`` says,
as ``evaluate`` computes them, so the two agree; under DDP every rank scores with rank 0's BatchNorm
statistics, which are the ones its checkpoint holds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from microaunet_cli.checkpoints import save_checkpoint
from microaunet_cli.config import RunSettings
from microaunet_cli.data import PreparedData
from microaunet_cli.errors import TrainingError
from microaunet_cli.evaluation.metrics import SegmentationMetrics
from microaunet_cli.inference.batched import predict_probs
from microaunet_cli.inference.preprocess import standardize
from microaunet_cli.models import model_entry
from microaunet_cli.training.augment import augment_batch, multiscale_side, resize_batch
from microaunet_cli.training.ema import WeightAverage
from microaunet_cli.training.feed import SplitFeed
from microaunet_cli.training.objectives import Objective, StepContext
from microaunet_cli.training.optim import build_optimizer, build_scheduler, replan_schedule
from microaunet_cli.training.progress import TrainingProgress
from microaunet_cli.training.run_folder import RunFolder
from microaunet_cli.training.runtime import Runtime, share_buffers_from_rank0, step_generator
from microaunet_cli.training.signals import StopFlag

log = logging.getLogger(__name__)

# How often (in batches) processes agree on whether a stop signal arrived; each check is a collective.
STOP_CHECK_EVERY = 10


@dataclass
class LoopState:
    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # batches done in the current epoch (non-zero only after a pre-emption)
    best_mdice: float = -1.0
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    # Running loss sums and image count of an epoch stopped part-way, so that its logged means still
    # cover the whole epoch after a resume.
    epoch_sums: dict[str, float] = field(default_factory=dict)
    epoch_seen: int = 0


class TrainingRun:
    def __init__(
        self,
        settings: RunSettings,
        objective: Objective,
        data: PreparedData,
        rt: Runtime,
        folder: RunFolder,
        extra_payload: Callable[[], dict] | None = None,
    ) -> None:
        self.s = settings
        self.rt = rt
        self.folder = folder
        self.data = data
        self.extra_payload = extra_payload or dict
        self.objective = objective.to(rt.device)
        if settings.train.channels_last:
            self.objective.to(memory_format=torch.channels_last)
        self.model = objective.model
        # With train.ema_decay the run scores and saves an average of the weights (training/ema.py).
        self.ema = WeightAverage(self.model, settings.train.ema_decay) if settings.train.ema_decay else None
        self.scored = self.ema.model if self.ema is not None else self.model
        self.optimizer = build_optimizer(self.objective.parameters(), settings.optim)
        self.scheduler = build_scheduler(self.optimizer, settings.schedule, settings.train.epochs)
        self.scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.amp_dtype == torch.float16)
        self.step_fn = self._wrap(self.objective)
        fold = settings.data.fold
        self.mean, self.std = data.normalization(fold)

        def feed(arrays) -> SplitFeed:
            return SplitFeed(arrays, rt.device, settings.data.on_device, rt.rank, rt.world_size)

        self.train_feed = feed(data.load("train", fold=fold))
        val = data.load("val", fold=fold) if "val" in data.splits else None
        self.val_feed = feed(val) if val is not None and len(val) else None
        self.state = LoopState()
        self.stop = StopFlag()

    def _wrap(self, objective: Objective) -> nn.Module:
        step: nn.Module = objective
        if self.rt.distributed:
            ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
            step = DistributedDataParallel(
                objective, device_ids=ids, find_unused_parameters=objective.find_unused_parameters
            )
        if self.s.train.compile:
            step = torch.compile(step)
        return step

    # ---- state ----------------------------------------------------------------------------------
    def restore(self, ckpt: dict[str, Any]) -> None:
        # A run with an average keeps the raw weights apart ("train_model"); "model" is what it scores.
        self.model.load_state_dict(ckpt.get("train_model", ckpt["model"]))
        if self.ema is not None:
            self.ema.load(ckpt["model"], ckpt.get("ema") or {})
        extra = ckpt.get("objective_extra") or {}
        if extra:
            self.objective.load_state_dict({**self.objective.state_dict(), **extra})
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.state = LoopState(
            epoch=ckpt["epoch"],
            step_in_epoch=ckpt.get("step_in_epoch", 0),
            best_mdice=ckpt.get("best_mdice", -1.0),
            best_epoch=ckpt.get("best_epoch"),
            history=list(ckpt.get("history", [])),
            train_seconds=ckpt.get("train_seconds", 0.0),
            epoch_sums=dict(ckpt.get("epoch_sums", {})),
            epoch_seen=ckpt.get("epoch_seen", 0),
        )
        if "torch_rng" in ckpt:
            torch.set_rng_state(ckpt["torch_rng"])
        log.info(
            "resumed at epoch %d%s",
            self.state.epoch,
            f", batch {self.state.step_in_epoch}" if self.state.step_in_epoch else "",
        )
        self._replan(ckpt)

    def _replan(self, ckpt: dict[str, Any]) -> None:
        """``--epochs`` may change on resume: the schedule and the curriculum follow the new end."""
        st, epochs = self.state, self.s.train.epochs
        old_epochs = ckpt["settings"]["train"]["epochs"]
        mid_epoch = st.step_in_epoch > 0
        replan_schedule(self.scheduler, self.s.schedule, old_epochs, epochs, st.epoch, mid_epoch)
        self.objective.resumed(ckpt, epochs, st.epoch + int(mid_epoch))

    def payload(self, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        st = self.state
        extra = {k: v for k, v in self.objective.state_dict().items() if not k.startswith("model.")}
        return {
            "role": model_entry(self.s.model.name).role,  # the network's role in the registry
            "training": self.objective.training_kind,  # how it was trained: supervised or distilled
            **self.objective.plan(),
            **self.objective.checkpoint_extras(),
            "model": self.scored.state_dict(),
            **(
                {"train_model": self.model.state_dict(), "ema": self.ema.state_dict()}
                if self.ema is not None
                else {}
            ),
            "objective_extra": extra,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "epoch": st.epoch,
            "step_in_epoch": st.step_in_epoch,
            "best_mdice": st.best_mdice,
            "best_epoch": st.best_epoch,
            "history": st.history,
            "train_seconds": st.train_seconds,
            "epoch_sums": st.epoch_sums,
            "epoch_seen": st.epoch_seen,
            "settings": self.s.model_dump(mode="json"),
            "size": self.data.size,
            "dataset": self.data.dataset,
            "normalization": {"mean": list(self.mean), "std": list(self.std)},
            "metrics": metrics or {},
            **self.extra_payload(),
        }

    def save(self, which: str, metrics: dict[str, Any] | None = None) -> None:
        if self.rt.is_main:
            save_checkpoint(self.folder.last if which == "last" else self.folder.best, self.payload(metrics))

    # ---- the loop -------------------------------------------------------------------------------
    def run(self) -> str:
        """Train to the last epoch; returns "completed" or "preempted"."""
        epochs = self.s.train.epochs
        if self.objective.describe(epochs):
            log.info("%s", self.objective.describe(epochs))
        with (
            self.stop.installed(),
            TrainingProgress(
                epochs,
                self.train_feed.num_batches(self.s.train.batch_size),
                quiet=self.s.output.quiet or not self.rt.is_main,
            ) as bar,
        ):
            while self.state.epoch < epochs:
                row = self.train_epoch(bar)
                if row is None:
                    self.save("last")
                    log.warning(
                        "stop signal received: saved %s at epoch %d, batch %d; resume with --resume",
                        self.folder.last,
                        self.state.epoch,
                        self.state.step_in_epoch,
                    )
                    return "preempted"
                self.end_epoch(row, bar)
        return "completed"

    def train_epoch(self, bar: TrainingProgress) -> dict[str, Any] | None:
        s, st = self.s, self.state
        self.objective.train()
        lr = self.optimizer.param_groups[0]["lr"]
        order = self.train_feed.order(st.epoch, s.train.seed, shuffle=True)
        n_batches = self.train_feed.num_batches(s.train.batch_size)
        sums = {
            k: torch.tensor(v, dtype=torch.float32, device=self.rt.device) for k, v in st.epoch_sums.items()
        }
        seen = resumed_seen = st.epoch_seen
        bar.start_epoch(st.epoch, st.step_in_epoch)
        start = time.perf_counter()
        for b, _, images, masks in self.train_feed.batches(order, s.train.batch_size, st.step_in_epoch):
            # On the device (no host copies), and per rank: each rank draws its own augmentations.
            g = step_generator(s.train.seed, st.epoch, b, self.rt.device, self.rt.rank)
            ctx = StepContext(epoch=st.epoch, progress=st.epoch + b / n_batches, generator=g)
            side = multiscale_side(self.data.size, s.augment.multiscale, s.train.seed, st.epoch, b)
            loss, terms = self.train_step(images, masks, ctx, g, side)
            for k, v in {"loss": loss, **terms}.items():  # summed on the device: no sync per step
                sums[k] = sums.get(k, 0.0) + v.detach().float() * images.shape[0]
            seen += images.shape[0]
            st.step_in_epoch = b + 1
            bar.step(loss, lr)
            if b % STOP_CHECK_EVERY == 0 or b == n_batches - 1:
                self._check_finite(sums["loss"], st.epoch)
            if (not self.rt.distributed or b % STOP_CHECK_EVERY == 0) and self.stop.should_stop(self.rt):
                st.train_seconds += time.perf_counter() - start
                st.epoch_sums, st.epoch_seen = {k: float(v) for k, v in sums.items()}, seen
                return None
        if self.rt.device.type == "cuda":
            torch.cuda.synchronize(self.rt.device)
        seconds = time.perf_counter() - start
        st.train_seconds += seconds
        row = {"epoch": st.epoch + 1, "lr": lr, **self.objective.stage(st.epoch)}
        row.update({f"train_{k}": float(v) / max(seen, 1) for k, v in sums.items()})
        done = seen - resumed_seen  # images of this session: the seconds are this session's too
        row["train_images_per_s"] = done * self.rt.world_size / seconds if seconds > 0 else None
        return row

    def train_step(self, images, masks, ctx, g, side: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = images.permute(0, 3, 1, 2).float().div_(255.0)
        y = masks.unsqueeze(1).float()
        x, y = augment_batch(x, y, self.s.augment, g)
        x, y = resize_batch(x, y, side)
        x = standardize(x, self.mean, self.std)
        if self.s.train.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.rt.autocast():
            loss, terms = self.step_fn(x, y, ctx)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.s.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.objective.parameters(), self.s.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update()
        return loss.detach(), terms

    def _check_finite(self, loss_sum: torch.Tensor, epoch: int) -> None:
        """Checked every few batches, not every one: reading a GPU value forces a sync. Once a loss is
        non-finite it stays so in the running sum; the weights it spoiled are never saved."""
        if not torch.isfinite(loss_sum):
            raise TrainingError(
                f"the loss became {float(loss_sum)} at epoch {epoch + 1}; training stopped and "
                f"the last good checkpoint {self.folder.last} is kept. Lower optim.lr, set "
                f"optim.grad_clip, or try --amp off"
            )

    def end_epoch(self, row: dict[str, Any], bar: TrainingProgress) -> None:
        st = self.state
        self.scheduler.step()
        st.epoch += 1
        st.step_in_epoch = 0
        # The last step left each rank with its own BatchNorm statistics; score and save rank 0's.
        share_buffers_from_rank0(self.model, self.rt)
        if self.ema is not None:
            share_buffers_from_rank0(self.ema.model, self.rt)
        st.epoch_sums, st.epoch_seen = {}, 0
        metrics = None
        if self.val_feed is not None and (
            st.epoch % self.s.train.eval_every == 0 or st.epoch == self.s.train.epochs
        ):
            metrics = self.evaluate(self.val_feed)
            row["val_mdice"] = metrics["per_image"]["mdice"]
            row["val_miou"] = metrics["per_image"]["miou"]
            row["val_dice_pooled"] = metrics["pooled"]["dice"]
        st.history.append(row)
        improved = metrics is not None and row["val_mdice"] > st.best_mdice
        if improved:
            st.best_mdice, st.best_epoch = row["val_mdice"], st.epoch
        elif self.val_feed is None:
            st.best_epoch = st.epoch  # no validation split: the latest model is the best we know
        self.save("last", metrics)
        if improved or self.val_feed is None:
            self.save("best", metrics)
        if self.rt.is_main:
            self.folder.write_history(st.history)
        bar.end_epoch(row)

    @torch.no_grad()
    def evaluate(self, feed: SplitFeed) -> dict[str, Any]:
        """Metrics of the current model on a split, computed exactly across processes, in float32
        (no autocast, as ``evaluate`` does: a score must not depend on the training precision)."""
        net = self.scored
        net.eval()
        metrics = SegmentationMetrics()
        order = feed.order(0, 0, shuffle=False)
        for _, idx, images, masks in feed.batches(order, self.s.train.eval_batch_size):
            # The shared inference path, at the training size and in float32 (amp_dtype None).
            probs = predict_probs(
                net,
                images,
                self.mean,
                self.std,
                self.rt.device,
                len(images),
                channels_last=self.s.train.channels_last,
            )
            metrics.update(probs, masks.unsqueeze(1), idx.to(self.rt.device))
        metrics.sync()
        self.model.train()  # the average, when there is one, stays in eval mode
        return metrics.compute()
