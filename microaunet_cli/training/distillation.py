"""The distillation objective: imitation (seg + KL + feature mimicry, blended by ω), then
preference distillation (seg + pixel InfoNCE + L2, and optionally the KL kept on). See SPEC section 2."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from microaunet_cli.config import DistillSettings
from microaunet_cli.losses import (
    bce_dice_loss,
    bernoulli_kl,
    feature_mimic,
    imitation_weight,
    l2_penalty,
    pixel_infonce,
)
from microaunet_cli.training.objectives import StepContext


class ProjectionHead(nn.Module):
    """Pixel embeddings for the contrastive stage (training only; never saved with the student)."""

    def __init__(self, c_in: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(c_in, dim, 1), nn.ReLU(inplace=True), nn.Conv2d(dim, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def curriculum_stage(epoch: int, epochs: int, imitation_fraction: float) -> int:
    """1 while ``epoch`` (0-based) < fraction × epochs, else 2: with 5 epochs and 0.6, epochs 0-2 imitate."""
    return 1 if epoch < imitation_fraction * epochs else 2


class DistillationObjective(nn.Module):
    kind = "student"

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg: DistillSettings, epochs: int) -> None:
        super().__init__()
        self.model = student
        self.cfg = cfg
        self.epochs = epochs
        s_c, t_c = student.c_list, teacher.c_list
        self.adapters = nn.ModuleList(
            nn.Identity() if a == b else nn.Conv2d(a, b, 1, bias=False) for a, b in zip(s_c[:5], t_c[:5])
        )
        self.student_head = ProjectionHead(s_c[0], cfg.proj_dim)
        self.teacher_head = ProjectionHead(t_c[0], cfg.proj_dim)
        # Not a registered submodule: the teacher is neither trained, nor saved, nor wrapped by DDP.
        object.__setattr__(self, "teacher", teacher.eval().requires_grad_(False))

    def _apply(self, fn, recurse=True):  # keep the unregistered teacher on the student's device
        super()._apply(fn, recurse)
        self.teacher._apply(fn, recurse)
        return self

    def stage(self, epoch: int) -> dict:
        return {"stage": curriculum_stage(epoch, self.epochs, self.cfg.imitation_fraction)}

    def omega(self, progress: float) -> float:
        return imitation_weight(progress, self.cfg.imitation_fraction * self.epochs)

    def forward(self, images: torch.Tensor, masks: torch.Tensor, ctx: StepContext):
        self.teacher.eval()
        with torch.no_grad():
            t_logits, t_skips, t_dec = self.teacher(images, return_features=True)
        s_logits, s_skips, s_dec = self.model(images, return_features=True)
        loss, terms = bce_dice_loss(s_logits, masks)
        terms = {"seg": loss.detach(), **terms}
        if curriculum_stage(ctx.epoch, self.epochs, self.cfg.imitation_fraction) == 1:
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
                l2 = l2_penalty(self.model.parameters())
                loss = loss + self.cfg.lambda_l2 * l2
                terms["l2"] = l2.detach()
        return loss, terms

    def _contrastive(self, s_logits, s_dec, t_logits, t_dec, masks, generator) -> torch.Tensor:
        h, w = s_dec.shape[-2:]
        low = lambda x: F.interpolate(x.float(), size=(h, w), mode="nearest")
        labels = low(masks)[:, 0] > 0.5
        return pixel_infonce(
            self.student_head(s_dec),
            self.teacher_head(t_dec.float()),
            labels,
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
