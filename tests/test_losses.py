"""Every loss term is non-zero on random data and sends gradient to the student (the upstream code
had a KL that was always 0, a contrastive loss with zero gradient and a feature term that never ran)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from microaunet_cli.config import DistillSettings
from microaunet_cli.losses import (
    bce_dice_loss,
    bernoulli_kl,
    feature_mimic,
    imitation_weight,
    l2_penalty,
    pixel_infonce,
)
from microaunet_cli.models import create_model
from microaunet_cli.training.distillation import DistillationObjective
from microaunet_cli.training.objectives import StepContext


def _grad_norm(loss: torch.Tensor, params) -> float:
    grads = torch.autograd.grad(loss, list(params), allow_unused=True, retain_graph=True)
    return sum(float(g.abs().sum()) for g in grads if g is not None)


def test_bce_dice_is_small_for_a_confident_right_answer():
    masks = (torch.rand(2, 1, 16, 16) > 0.5).float()
    good, _ = bce_dice_loss((masks * 2 - 1) * 20, masks)
    bad, terms = bce_dice_loss(-(masks * 2 - 1) * 20, masks)
    assert good < 0.01 and bad > 1.5
    assert set(terms) == {"bce", "dice"}


def test_kl_is_zero_for_equal_logits_and_grows_with_the_gap():
    z = torch.randn(2, 1, 8, 8)
    assert float(bernoulli_kl(z, z, 4.0)) == pytest.approx(0.0, abs=1e-7)
    gaps = [float(bernoulli_kl(z + d, z, 4.0)) for d in (0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in itertools.pairwise(gaps))
    assert gaps[0] > 0


def test_kl_is_nonzero_with_gradient_on_random_logits():
    zs = torch.randn(2, 1, 8, 8, requires_grad=True)
    kl = bernoulli_kl(zs, torch.randn(2, 1, 8, 8), 2.0)
    assert float(kl.detach()) > 0
    assert _grad_norm(kl, [zs]) > 0


@pytest.mark.parametrize("mode", ["channel_norm", "attention"])
def test_feature_mimic_nonzero_with_gradient(mode):
    s = [torch.randn(2, c, 8, 8, requires_grad=True) for c in (4, 8)]
    t = [torch.randn(2, c, 8, 8) for c in (4, 8)]
    loss = feature_mimic(s, t, mode=mode)
    assert float(loss.detach()) > 0
    assert _grad_norm(loss, s) > 0
    same = feature_mimic([x.detach() for x in t], t, mode=mode)
    assert float(same) == pytest.approx(0.0, abs=1e-6)


def _embeddings(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(2, 16, 12, 12, generator=g)
    labels = torch.zeros(2, 12, 12, dtype=torch.bool)
    labels[:, 3:8, 3:8] = True
    return teacher, labels, g


def test_infonce_nonzero_with_gradient():
    teacher, labels, _g = _embeddings()
    student = torch.randn(2, 16, 12, 12, requires_grad=True)
    loss = pixel_infonce(student, teacher, labels, generator=torch.Generator().manual_seed(1))
    assert float(loss.detach()) > 0
    assert _grad_norm(loss, [student]) > 0


def test_infonce_falls_as_student_moves_to_teacher():
    teacher, labels, g = _embeddings()
    noise = torch.randn(2, 16, 12, 12, generator=g)
    losses = []
    for alpha in (0.0, 0.3, 0.6, 0.9, 1.0):
        student = (1 - alpha) * noise + alpha * teacher
        losses.append(
            float(pixel_infonce(student, teacher, labels, generator=torch.Generator().manual_seed(3)))
        )
    assert all(a > b for a, b in itertools.pairwise(losses))


@pytest.mark.parametrize("preferred_are_hard", [True, False])
def test_infonce_weights_preferred_anchors_more(preferred_are_hard):
    """Anchors the student gets wrong (and the teacher right) carry preference_weight times the
    weight of the others: with those anchors the hard ones, raising the weight raises the loss; with
    them the easy ones, it lowers it."""
    teacher, labels, g = _embeddings()
    hard = torch.zeros_like(labels)
    hard[:, :6] = True  # the top half: the student's embedding there is noise, elsewhere the teacher's
    student = torch.where(hard[:, None], torch.randn(2, 16, 12, 12, generator=g), teacher)
    wrong = hard if preferred_are_hard else ~hard
    losses = []
    for weight in (1.0, 2.0, 5.0):
        losses.append(
            float(
                pixel_infonce(
                    student,
                    teacher,
                    labels,
                    student_wrong=wrong,
                    teacher_right=torch.ones_like(labels),
                    preference_weight=weight,
                    generator=torch.Generator().manual_seed(0),
                )
            )
        )
    rising = all(a < b for a, b in itertools.pairwise(losses))
    falling = all(a > b for a, b in itertools.pairwise(losses))
    assert rising if preferred_are_hard else falling, losses


def test_infonce_is_fixed_by_its_generator():
    teacher, labels, g = _embeddings()
    student = torch.randn(2, 16, 12, 12, generator=g)
    runs = [
        float(
            pixel_infonce(
                student,
                teacher,
                labels,
                n_anchors=8,
                n_negatives=8,
                generator=torch.Generator().manual_seed(seed),
            )
        )
        for seed in (5, 5, 6)
    ]
    assert runs[0] == runs[1] != runs[2]


def test_anchor_sampling_is_uniform_over_its_class():
    from microaunet_cli.losses.distill import _sample

    member = torch.zeros(40, dtype=torch.bool)
    member[[3, 7, 8, 20, 39]] = True
    picks = _sample(member, member.sum(), 5000, torch.Generator().manual_seed(0))
    assert set(picks.tolist()) == {3, 7, 8, 20, 39}
    counts = torch.bincount(picks, minlength=40)[member].float()
    assert (counts / 5000 - 0.2).abs().max() < 0.03  # 5 equally likely members: 0.2 each


def test_infonce_samples_on_the_device_without_host_syncs():
    """No op that reads a tensor's values back to the host (a GPU sync): no nonzero, no .item()."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.seen.add(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    teacher, labels, g = _embeddings()
    student = torch.randn(2, 16, 12, 12, generator=g, requires_grad=True)
    with Ops() as ops:
        loss = pixel_infonce(
            student,
            teacher,
            labels,
            student_wrong=labels,
            teacher_right=labels,
            generator=torch.Generator().manual_seed(0),
        )
        single = pixel_infonce(student, teacher, torch.zeros_like(labels), generator=torch.Generator())
    assert not ops.seen & {"nonzero", "_local_scalar_dense", "item", "is_nonzero", "masked_select"}, ops.seen
    assert float(loss.detach()) > 0 and float(single.detach()) == 0.0


def test_infonce_single_class_batch_is_zero_but_connected():
    teacher, _, _ = _embeddings()
    student = torch.randn(2, 16, 12, 12, requires_grad=True)
    loss = pixel_infonce(student, teacher, torch.zeros(2, 12, 12, dtype=torch.bool))
    assert float(loss.detach()) == 0.0
    loss.backward()  # stays in the graph, so DDP and autocast see a normal tensor


def test_l2_penalty_nonzero_with_gradient():
    w = torch.randn(3, 3, requires_grad=True)
    loss = l2_penalty([w])
    assert float(loss.detach()) == pytest.approx(float((w.detach() ** 2).sum()))
    assert _grad_norm(loss, [w]) > 0


def test_omega_rises_as_a_cosine_from_zero_to_one():
    T = 6.0
    assert imitation_weight(0, T) == pytest.approx(0.0)
    assert imitation_weight(T / 2, T) == pytest.approx(0.5)
    assert imitation_weight(T, T) == pytest.approx(1.0)
    assert imitation_weight(T / 4, T) == pytest.approx(0.5 * (1 - 2**-0.5))
    values = [imitation_weight(t / 10 * T, T) for t in range(11)]
    assert all(a < b for a, b in itertools.pairwise(values))


@pytest.mark.parametrize("epochs,stage1", [(10, 6), (5, 3), (7, 5), (3, 2), (1, 1), (100, 60)])
def test_stage_switch_at_sixty_percent(objective, epochs, stage1):
    """The stage each epoch's loss and log row use, from an objective built for ``epochs``."""
    run = DistillationObjective(
        objective.model, objective.teacher, DistillSettings(imitation_fraction=0.6), epochs=epochs
    )
    stages = [run.stage(e)["stage"] for e in range(epochs)]
    assert stages == [1] * stage1 + [2] * (epochs - stage1)
    assert run.plan() == {"curriculum": {"stage1_epochs": stage1}}


@pytest.fixture(scope="module")
def objective():
    teacher = create_model("malunet").eval()
    student = create_model("microaunet")
    return DistillationObjective(student, teacher, DistillSettings(), epochs=10)


def _term_grads(objective, epoch: int, progress: float) -> dict[str, float]:
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 64)
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 16:40, 20:44] = 1
    student = objective.model
    s_logits, s_skips, s_dec = student(images, return_features=True)
    with torch.no_grad():
        t_logits, t_skips, t_dec = objective.teacher(images, return_features=True)
    cfg = objective.cfg
    terms = {
        "kl": bernoulli_kl(s_logits, t_logits, cfg.temperature),
        "mimic": feature_mimic(s_skips, t_skips, objective.adapters, cfg.mimic),
        "infonce": objective._contrastive(
            s_logits, s_dec, t_logits, t_dec, masks, torch.Generator().manual_seed(0)
        ),
        "l2": l2_penalty(student.parameters()),
    }
    out = {}
    for name, value in terms.items():
        assert float(value.detach()) > 0, name
        out[name] = _grad_norm(value, student.parameters())
    return out


def test_every_distillation_term_reaches_the_student(objective):
    grads = _term_grads(objective, epoch=0, progress=0.0)
    assert all(v > 0 for v in grads.values()), grads


def test_objective_uses_stage_terms_and_leaves_teacher_alone(objective):
    images = torch.randn(2, 3, 64, 64)
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 10:30, 10:30] = 1
    _, stage1 = objective(images, masks, StepContext(epoch=2, progress=2.5, generator=torch.Generator()))
    _, stage2 = objective(images, masks, StepContext(epoch=8, progress=8.0, generator=torch.Generator()))
    assert {"mimic", "kl", "omega"} <= set(stage1) and "infonce" not in stage1
    assert {"infonce", "l2"} <= set(stage2) and "kl" not in stage2
    assert float(stage1["omega"]) == pytest.approx(imitation_weight(2.5, 6.0))
    assert not any(n.startswith("teacher.") for n in objective.state_dict())


def test_teacher_gets_no_gradient_and_keeps_its_statistics():
    """The teacher runs under no_grad and in eval mode whatever state it is handed in: even with its
    weights asking for gradient and its BatchNorm layers in training mode (a student network used as
    teacher has running statistics), a step leaves it exactly as it was."""
    teacher = create_model("microaunet")
    obj = DistillationObjective(create_model("microaunet_fast"), teacher, DistillSettings(), epochs=10)
    images = torch.randn(2, 3, 64, 64)
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 10:30, 10:30] = 1
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    obj.train()
    teacher.train().requires_grad_(True)  # a probe: the objective must not rely on these being off
    for epoch in (2, 8):
        loss, _ = obj(
            images, masks, StepContext(epoch=epoch, progress=float(epoch), generator=torch.Generator())
        )
        loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any("running_mean" in k for k in before)
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k


def _batch():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 64)
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 16:40, 20:44] = 1
    return images, masks


def _twin(base: DistillationObjective, **cfg) -> DistillationObjective:
    """An objective sharing ``base``'s networks and heads, with other weights."""
    twin = DistillationObjective(base.model, base.teacher, base.cfg.model_copy(update=cfg), epochs=10)
    twin.load_state_dict(base.state_dict())
    return twin


def _step(obj: DistillationObjective, epoch: int, progress: float):
    images, masks = _batch()
    ctx = StepContext(epoch=epoch, progress=progress, generator=torch.Generator().manual_seed(0))
    loss, terms = obj(images, masks, ctx)
    grads = torch.autograd.grad(loss, list(obj.model.parameters()), allow_unused=True)
    flat = torch.cat([g.flatten() for g in grads if g is not None])
    return loss.detach(), terms, flat


def test_stage_one_loss_is_seg_plus_the_weighted_blend(objective):
    # λ_imit 3 and ω about 0.15: every term carries weight, none is negligible.
    obj = _twin(objective, lambda_imit=3.0)
    loss, terms, _ = _step(obj, epoch=1, progress=1.5)
    w = float(terms["omega"])
    assert 0.05 < w < 0.95 and float(terms["mimic"]) > 0.01 and float(terms["kl"]) > 1e-4
    expected = terms["seg"] + 3.0 * ((1 - w) * terms["mimic"] + w * terms["kl"])
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)


def test_stage_two_loss_is_seg_plus_infonce_plus_l2(objective):
    obj = _twin(objective, lambda_con=0.5, lambda_l2=1e-3)
    loss, terms, _ = _step(obj, epoch=8, progress=8.0)
    assert float(terms["infonce"]) > 0.01 and float(terms["l2"]) > 1.0
    expected = terms["seg"] + 0.5 * terms["infonce"] + 1e-3 * terms["l2"]
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize(
    "weight,epoch,progress", [("lambda_imit", 1, 1.5), ("lambda_con", 8, 8.0), ("lambda_l2", 8, 8.0)]
)
def test_each_weight_changes_the_students_gradient(objective, weight, epoch, progress):
    on = _twin(objective, lambda_imit=1.0, lambda_con=0.5, lambda_l2=1e-3)
    off = _twin(on, **{weight: 0.0})
    _, _, g_on = _step(on, epoch, progress)
    _, _, g_off = _step(off, epoch, progress)
    assert (g_on - g_off).abs().max() > 1e-6 * g_on.abs().max()


def test_l2_covers_kernels_not_norms_or_scalar_gates(objective):
    """Norm gains and LSCAB's α, β (both start at 0.5, not 0) are not pulled towards 0."""
    student = objective.model
    _, terms, _ = _step(objective, epoch=8, progress=8.0)
    expected = sum(float(p.detach().pow(2).sum()) for p in student.parameters() if p.ndim >= 2)
    assert float(terms["l2"]) == pytest.approx(expected, rel=1e-5)

    from microaunet_cli.training.optim import shrinkable_parameters

    kept = shrinkable_parameters(student)
    assert not any(p is student.bridge.alpha or p is student.bridge.beta for p in kept)
    assert all(p.ndim >= 2 for p in kept) and len(kept) < len(list(student.parameters()))


@pytest.mark.parametrize("channels", [4, 48])
def test_channel_norm_mimic_is_a_unit_vector_distance_whatever_the_width(channels):
    """λ_imit multiplies the squared distance between unit feature vectors (in [0, 4]), not a
    per-channel mean: opposite vectors score 4 and orthogonal ones 2, for 4 channels as for 48."""
    t = torch.randn(2, channels, 8, 8)
    assert float(feature_mimic([-t], [t])) == pytest.approx(4.0, rel=1e-5)
    a, b = torch.zeros(2, channels, 8, 8), torch.zeros(2, channels, 8, 8)
    a[:, 0], b[:, 1] = 1.0, 2.0
    assert float(feature_mimic([a], [b])) == pytest.approx(2.0, rel=1e-5)


@pytest.mark.parametrize("epochs,stage1", [(5, 3), (7, 5)])
def test_omega_reaches_one_exactly_when_stage_one_ends(objective, epochs, stage1):
    """0.6 × 7 = 4.2 is not whole: stage 1 runs 5 epochs, and ω rises over those 5, not over 4.2."""
    obj = DistillationObjective(objective.model, objective.teacher, DistillSettings(), epochs=epochs)
    assert [obj.stage(e)["stage"] for e in range(epochs)] == [1] * stage1 + [2] * (epochs - stage1)
    images, masks = _batch()
    last = stage1 - 1
    _, terms = obj(images, masks, StepContext(epoch=last, progress=last + 0.5, generator=torch.Generator()))
    assert float(terms["omega"]) == pytest.approx(imitation_weight(last + 0.5, stage1))
    assert float(terms["omega"]) < 0.99
    assert obj.omega(stage1) == pytest.approx(1.0)


def test_kl_can_be_kept_on_in_stage_two(objective):
    images = torch.randn(2, 3, 64, 64)
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 10:30, 10:30] = 1
    ctx = StepContext(epoch=8, progress=8.0, generator=torch.Generator().manual_seed(0))
    kept = DistillationObjective(
        objective.model, objective.teacher, DistillSettings(lambda_kl_stage2=0.5), epochs=10
    )
    kept.student_head.load_state_dict(objective.student_head.state_dict())
    kept.teacher_head.load_state_dict(objective.teacher_head.state_dict())
    loss_off, terms_off = objective(images, masks, ctx)
    ctx.generator.manual_seed(0)
    loss_on, terms_on = kept(images, masks, ctx)
    assert "kl" not in terms_off and float(terms_on["kl"]) > 0
    assert float((loss_on - loss_off).detach()) == pytest.approx(0.5 * float(terms_on["kl"]), rel=1e-4)


def test_kl_is_the_four_term_bernoulli_kl_even_at_saturated_logits():
    """The two-log-sigmoid form against the definition, in float64, with logits up to ±60."""
    g = torch.Generator().manual_seed(0)
    zs = torch.cat([torch.randn(2, 1, 8, 8, generator=g) * 5, torch.full((1, 1, 8, 8), 60.0)])
    zt = torch.cat([torch.randn(2, 1, 8, 8, generator=g) * 5, torch.full((1, 1, 8, 8), -60.0)])
    for tau in (1.0, 4.0):
        s, t = zs.double() / tau, zt.double() / tau
        pt = torch.sigmoid(t)
        ls = F.logsigmoid
        want = (pt * (ls(t) - ls(s)) + (1 - pt) * (ls(-t) - ls(-s))).mean() * tau**2
        assert float(bernoulli_kl(zs, zt, tau)) == pytest.approx(float(want), rel=1e-5)


def test_feature_mimic_is_the_distance_between_normalised_maps_zero_vectors_included():
    """The expanded form against F.normalize's unit vectors, value and gradient, with pixels whose
    student vector is exactly zero (a ReLU map) and maps of several widths."""
    g = torch.Generator().manual_seed(0)
    s = [torch.randn(2, c, 6, 6, generator=g).relu() for c in (4, 8)]
    s[0][:, :, :2] = 0  # whole channel vectors of zeros
    t = [torch.randn(2, c, 6, 6, generator=g) for c in (4, 8)]
    s = [x.requires_grad_() for x in s]
    got = feature_mimic(s, t)
    unit = [(F.normalize(a, dim=1) - F.normalize(b, dim=1)).pow(2).sum(1).mean() for a, b in zip(s, t)]
    want = torch.stack(unit).mean()
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    for a, b in zip(torch.autograd.grad(got, s), torch.autograd.grad(want, s)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))
