"""The distillation objective: imitation (seg + KL + feature mimicry, blended by ω), then
preference distillation (seg + pixel InfoNCE + L2, and optionally the KL kept on). See
docs/ARCHITECTURE.md, "Losses"."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from microaunet_cli.config import DistillSettings
from microaunet_cli.losses import (
    SEGMENTATION_LOSSES,
    bernoulli_kl,
    feature_mimic,
    imitation_weight,
    l2_penalty,
    pixel_infonce,
)
from microaunet_cli.models.cpu_training import also_without_gradients
from microaunet_cli.training.deep_supervision import DeepSupervision
from microaunet_cli.training.objectives import Objective, StepContext
from microaunet_cli.training.optim import shrinkable_parameters


class ProjectionHead(nn.Module):
    """Pixel embeddings for the contrastive stage (training only; never saved with the student)."""

    def __init__(self, c_in: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(c_in, dim, 1), nn.ReLU(inplace=True), nn.Conv2d(dim, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """The same projection of ``N×C`` pixel rows (the 1×1 convs as matrix products)."""
        first, _, second = self.net
        x = F.relu(F.linear(x, first.weight.flatten(1), first.bias))
        return F.linear(x, second.weight.flatten(1), second.bias)


def imitation_epochs(epochs: int, imitation_fraction: float) -> int:
    """Whole epochs of imitation: those whose index is below fraction × epochs (5 × 0.6 -> 3,
    7 × 0.6 -> 5)."""
    # The small tolerance keeps 0.6 × 10 = 6.000000000000001 at 6.
    return min(epochs, max(0, math.ceil(imitation_fraction * epochs - 1e-9)))


class DistillationObjective(Objective):
    training_kind = "distilled"
    run_suffix = "-distill"
    # The two stages use different heads and terms: some trained parameters sit out each stage.
    find_unused_parameters = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        cfg: DistillSettings,
        epochs: int,
        teacher_info: dict[str, Any] | None = None,
        seg_loss: str = "bce_dice",
        deep_supervision: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = student
        self.seg_loss = SEGMENTATION_LOSSES[seg_loss]
        self.cfg = cfg
        # Where the teacher came from (path, role, data, checksum), recorded with every checkpoint.
        self.teacher_info = dict(teacher_info or {})
        # Stage 1 is this many whole epochs, and ω rises over exactly them (T in the ω formula,
        # docs/ARCHITECTURE.md "Losses").
        self.stage1_epochs = imitation_epochs(epochs, cfg.imitation_fraction)
        s_c, t_c = student.c_list, teacher.c_list
        self.adapters = nn.ModuleList(
            nn.Identity() if a == b else nn.Conv2d(a, b, 1, bias=False) for a, b in zip(s_c[:5], t_c[:5])
        )
        self.student_head = ProjectionHead(s_c[0], cfg.proj_dim)
        self.teacher_head = ProjectionHead(t_c[0], cfg.proj_dim)
        # Not a registered submodule: the teacher is neither trained, nor saved, nor wrapped by DDP.
        object.__setattr__(self, "teacher", teacher.eval().requires_grad_(False))
        # Built last, so that the heads above draw the same random weights with it as without.
        self.side = DeepSupervision(student, deep_supervision) if deep_supervision > 0 else None

    def _apply(self, fn, recurse=True):  # keep the unregistered teacher on the student's device
        super()._apply(fn, recurse)
        self.teacher._apply(fn, recurse)
        return self

    def stage_of(self, epoch: int) -> int:
        return 1 if epoch < self.stage1_epochs else 2

    def stage(self, epoch: int) -> dict:
        return {"stage": self.stage_of(epoch)}

    def plan(self) -> dict:
        """The curriculum as run, for the log, the checkpoint and the summary."""
        return {"curriculum": {"stage1_epochs": self.stage1_epochs}}

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"teacher": dict(self.teacher_info)}

    def after_run(self, summary: dict[str, Any]) -> None:
        """The frozen teacher must leave the run with the weights it came with."""
        after = state_checksum(self.teacher)
        summary["teacher"]["checksum_after"] = after
        if after != self.teacher_info.get("checksum"):
            raise RuntimeError(
                "the teacher's weights changed during distillation; this is a bug, please report it"
            )

    def describe(self, epochs: int) -> str:
        t = self.stage1_epochs
        stage2 = f"stage 2 (preference) epochs {t + 1}-{epochs}" if t < epochs else "no stage 2"
        return f"curriculum: stage 1 (imitation, ω over {t} epochs) epochs 1-{t}, {stage2} of {epochs}"

    def resumed(self, ckpt: dict, epochs: int, epochs_begun: int) -> None:
        """A resumed run keeps its stage boundary unless ``--epochs`` changed. Then stage 1 spans
        fraction × the new final count (ω rises over that), except that a stage-1 epoch already begun
        stays stage 1 and a stage 2 already begun is never left."""
        saved = (ckpt.get("curriculum") or {}).get("stage1_epochs")
        old_epochs = ckpt["settings"]["train"]["epochs"]
        if saved is None:  # checkpoints from before the boundary was recorded
            saved = imitation_epochs(old_epochs, self.cfg.imitation_fraction)
        if old_epochs == epochs or epochs_begun > saved:
            self.stage1_epochs = saved
        else:
            self.stage1_epochs = max(self.stage1_epochs, epochs_begun)

    def omega(self, progress: float) -> float:
        return imitation_weight(progress, self.stage1_epochs)

    def forward(self, images: torch.Tensor, masks: torch.Tensor, ctx: StepContext):
        self.teacher.eval()
        with torch.no_grad(), also_without_gradients():  # the teacher's part of a training step
            t_logits, t_skips, t_dec = self.teacher(images, return_features=True)
        if self.side is not None:
            self.side.arm()
        s_logits, s_skips, s_dec = self.model(images, return_features=True)
        loss, terms = self.seg_loss(s_logits, masks)
        terms = {"seg": loss.detach(), **terms}
        if self.side is not None:
            side = self.side.side_loss(masks, self.seg_loss)
            loss = loss + side
            terms["side"] = side.detach()
        if self.stage_of(ctx.epoch) == 1:
            w = self.omega(ctx.progress)
            mimic = feature_mimic(s_skips, t_skips, self.adapters, self.cfg.mimic)
            kl = bernoulli_kl(s_logits, t_logits, self.cfg.temperature)
            loss = loss + self.cfg.lambda_imit * ((1 - w) * mimic + w * kl)
            terms.update(mimic=mimic.detach(), kl=kl.detach(), omega=torch.tensor(w))
        else:
            con = self._contrastive(s_logits, s_dec, t_logits, t_dec, masks, ctx.generator)
            loss = loss + self.cfg.lambda_con * con
            terms["infonce"] = con.detach()
            if self.cfg.lambda_kl_stage2 > 0:
                kl = bernoulli_kl(s_logits, t_logits, self.cfg.temperature)
                loss = loss + self.cfg.lambda_kl_stage2 * kl
                terms["kl"] = kl.detach()
            if self.cfg.lambda_l2 > 0:
                l2 = l2_penalty(shrinkable_parameters(self.model))
                loss = loss + self.cfg.lambda_l2 * l2
                terms["l2"] = l2.detach()
        return loss, terms

    def _contrastive(self, s_logits, s_dec, t_logits, t_dec, masks, generator) -> torch.Tensor:
        h, w = s_dec.shape[-2:]
        low = lambda x: F.interpolate(x.float(), size=(h, w), mode="nearest")
        labels = low(masks)[:, 0] > 0.5
        return pixel_infonce(
            s_dec,
            t_dec.float(),
            labels,
            student_head=self.student_head.rows,
            teacher_head=self.teacher_head.rows,
            student_wrong=(low(s_logits.detach())[:, 0] > 0) != labels,
            teacher_right=(low(t_logits)[:, 0] > 0) == labels,
            n_anchors=self.cfg.n_anchors,
            n_negatives=self.cfg.n_negatives,
            temperature=self.cfg.contrast_temperature,
            preference_weight=self.cfg.preference_weight,
            generator=generator,
        )


def state_checksum(module: nn.Module) -> float:
    """A cheap fingerprint of every weight and buffer, to show the teacher is untouched by a run."""
    total = 0.0
    for i, t in enumerate(module.state_dict().values()):
        if t.is_floating_point():
            total += float(t.double().sum()) * math.sqrt(i + 1) + float(t.double().abs().sum())
    return total
