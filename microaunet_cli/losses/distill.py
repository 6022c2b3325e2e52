"""Distillation terms (docs/ARCHITECTURE.md, "Losses"): Bernoulli KL, feature mimicry, pixel InfoNCE, L2.

Each is a pure function of tensors, so each can be shown to be non-zero and to carry gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from microaunet_cli.losses.logistic import log_sigmoid


def imitation_weight(t: float, stage_length: float) -> float:
    """ω(t) = ½(1 + cos(π(T − t)/T)): 0 at the start of stage 1, 1 at its end (features first, outputs
    later)."""
    if stage_length <= 0:
        return 1.0
    t = min(max(t, 0.0), stage_length)
    return 0.5 * (1.0 + math.cos(math.pi * (stage_length - t) / stage_length))


def bernoulli_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Per-pixel KL(σ(z_t/τ) || σ(z_s/τ)) between Bernoulli distributions, mean over pixels, times τ².

    A softmax over one channel is identically 1 (its KL is always 0), so the two-outcome form is used:
    p_t·(log σ(z_t) − log σ(z_s)) + (1 − p_t)·(log σ(−z_t) − log σ(−z_s)). Since log σ(−z) = log σ(z) − z,
    that is log σ(z_t) − log σ(z_s) + σ(−z_t)·(z_s − z_t): two log-sigmoids instead of four (the slowest
    part of the term on a CPU), the same value.
    """
    zs = student_logits.float() / temperature
    zt = teacher_logits.float() / temperature
    kl = log_sigmoid(zt) - log_sigmoid(zs) + torch.sigmoid(-zt) * (zs - zt)
    return kl.mean() * temperature**2


def _attention_map(feature: torch.Tensor) -> torch.Tensor:
    """Attention transfer: mean of squared activations over channels, flattened and L2-normalised."""
    return F.normalize(feature.float().pow(2).mean(dim=1).flatten(1), dim=1)


def feature_mimic(
    student_feats: Sequence[torch.Tensor],
    teacher_feats: Sequence[torch.Tensor],
    adapters: Iterable[nn.Module] | None = None,
    mode: str = "channel_norm",
) -> torch.Tensor:
    """Mean over the five skips of a squared distance between aligned feature maps.

    ``channel_norm``: each pixel's channel vector is L2-normalised in both networks and the term is
    the squared distance between the two unit vectors, summed over channels and averaged over pixels:
    ‖ŝ − t̂‖² = 2 − 2·cos(s, t), in [0, 4] whatever the channel count (0: same direction, 2:
    orthogonal). It is deliberately not the per-element MSE, which would be this divided by C and so
    weigh the 8-channel skip six times more than the 48-channel one. ``λ_imit`` therefore multiplies
    a mean squared chord distance between unit feature vectors.
    ``attention``: the MSE between attention-transfer maps (one value per pixel, channel counts may
    differ). ``adapters`` (1×1 convs) map student channels to the teacher's where they differ.
    """
    adapters = list(adapters) if adapters is not None else [nn.Identity()] * len(student_feats)
    terms = []
    for s, t, adapt in zip(student_feats, teacher_feats, adapters):
        if mode == "attention":
            terms.append(F.mse_loss(_attention_map(s), _attention_map(t.detach())))
        else:
            # Sum over channels, mean over pixels: squared distance between unit vectors, in [0, 4].
            terms.append(_unit_distance_sq(adapt(s).float(), t.detach().float()).mean())
    return torch.stack(terms).mean()


def _unit_distance_sq(s: torch.Tensor, t: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per pixel ‖ŝ − t̂‖² with ŝ = s / max(‖s‖, eps) over dim 1 (``F.normalize``'s unit vectors, a zero
    vector staying zero), expanded as ‖ŝ‖² + ‖t̂‖² − 2·ŝ·t̂: three channel sums, then per-pixel
    arithmetic, instead of dividing whole maps by their per-pixel norms (a broadcast that is slow on
    channels-last CPU maps). max(‖s‖, eps)² is max(‖s‖², eps²), whose gradient stays finite at 0."""
    ss, tt, st = (s * s).sum(1), (t * t).sum(1), (s * t).sum(1)
    ns2, nt2 = ss.clamp_min(eps * eps), tt.clamp_min(eps * eps)
    return ss / ns2 + tt / nt2 - 2 * st * ns2.rsqrt() * nt2.rsqrt()


def pixel_infonce(
    student_emb: torch.Tensor,
    teacher_emb: torch.Tensor,
    labels: torch.Tensor,
    *,
    student_wrong: torch.Tensor | None = None,
    teacher_right: torch.Tensor | None = None,
    n_anchors: int = 256,
    n_negatives: int = 512,
    temperature: float = 0.1,
    preference_weight: float = 2.0,
    generator: torch.Generator | None = None,
    student_head: Callable[[torch.Tensor], torch.Tensor] | None = None,
    teacher_head: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Pixel-wise InfoNCE from student anchors to teacher embeddings.

    ``student_emb``, ``teacher_emb``: ``B×D×h×w`` (L2-normalised here). ``labels``: ``B×h×w`` ground
    truth in {0, 1}. Anchors are sampled student pixels, half from each class where both exist; the
    positive of an anchor is the teacher embedding at the same pixel (same class by construction);
    negatives are teacher embeddings sampled from the other class. Anchors where the teacher is right
    and the student wrong weigh ``preference_weight`` times more (the preference).

    ``student_head``/``teacher_head`` map ``N×C`` pixel rows to ``N×D`` embeddings; the maps are then
    features, and a head runs only on the few hundred sampled pixels. For a per-pixel head (1×1 convs)
    that is the same loss as projecting the whole map first, at a fraction of the cost.
    """
    s = student_emb.permute(0, 2, 3, 1).reshape(-1, student_emb.shape[1])
    t = teacher_emb.permute(0, 2, 3, 1).reshape(-1, teacher_emb.shape[1])
    y = labels.reshape(-1).long()
    weight = torch.ones_like(y, dtype=torch.float32)
    if student_wrong is not None and teacher_right is not None:
        preferred = (student_wrong.reshape(-1) & teacher_right.reshape(-1)).float()
        weight = 1.0 + (preference_weight - 1.0) * preferred

    counts = torch.stack([(y == c).sum() for c in (0, 1)])  # stays on the device: no host sync
    per_class = max(n_anchors // 2, 1)
    draws = [
        (
            _sample(y == c, counts[c], per_class, generator),
            _sample(y != c, counts[1 - c], n_negatives, generator),
        )
        for c in (0, 1)
    ]
    # Every embedding the loss reads, projected and normalised once: student anchors, teacher rows.
    s_idx = torch.cat([a for a, _ in draws])
    t_idx = torch.cat([i for a, n in draws for i in (a, n)])
    s_rows = _embed(s[s_idx], student_head)
    t_rows = _embed(t[t_idx], teacher_head)
    losses, s_at, t_at = [], 0, 0
    for anchors, negatives in draws:
        a = s_rows[s_at : s_at + len(anchors)]  # n×D
        t_pos = t_rows[t_at : t_at + len(anchors)]
        t_neg = t_rows[t_at + len(anchors) : t_at + len(anchors) + len(negatives)]
        s_at, t_at = s_at + len(anchors), t_at + len(anchors) + len(negatives)
        pos = (a * t_pos).sum(1, keepdim=True) / temperature  # n×1
        neg = a @ t_neg.T / temperature  # n×m
        logits = torch.cat([pos, neg], dim=1)
        losses.append(torch.logsumexp(logits, dim=1) - logits[:, 0])
    loss, w = torch.cat(losses), weight[s_idx]
    term = (loss * w).sum() / w.sum()
    # One class only in the batch: no negatives exist and the picks above are arbitrary pixels, so
    # the term is zero (still in the graph, so DDP and autocast see a normal tensor). Selecting on the
    # device instead of branching on the counts avoids a host sync at every step.
    return torch.where((counts > 0).all(), term, term * 0.0)


def _embed(rows: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor] | None) -> torch.Tensor:
    rows = rows.float() if head is None else head(rows).float()
    return F.normalize(rows, dim=1)


def _sample(
    member: torch.Tensor, count: torch.Tensor, n: int, generator: torch.Generator | None
) -> torch.Tensor:
    """n flat indices drawn uniformly, with replacement, among the ``True`` entries of ``member``.

    All on ``member``'s device, with no host sync: a uniform rank r in [0, count) is drawn, and the
    r-th member found by a binary search in the running count of members. ``generator`` must live on
    that device (it fixes the draws, so runs repeat and resume exactly). With ``count`` 0 the indices
    are valid but meaningless; the caller zeroes the term.
    """
    u = torch.rand(n, device=member.device, generator=generator)
    rank = (u * count).long().clamp_(max=(count - 1).clamp(min=0))
    running = member.long().cumsum(0)
    return torch.searchsorted(running, rank + 1).clamp_(max=member.numel() - 1)


def l2_penalty(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """Squared L2 norm of ``parameters`` (distinct from AdamW's decoupled weight decay). Pass only
    the weights meant to shrink: norm gains and LSCAB's α, β are pulled to 0 by it otherwise."""
    return torch.stack([p.float().pow(2).sum() for p in parameters]).sum()
