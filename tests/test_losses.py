"""Every loss term is non-zero on random data and sends gradient to the student (the upstream code
had a KL that was always 0, a contrastive loss with zero gradient and a feature term that never ran)."""

from __future__ import annotations

import pytest
import torch

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
from microaunet_cli.training.distillation import DistillationObjective, curriculum_stage
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
    assert all(a < b for a, b in zip(gaps, gaps[1:]))
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
    teacher, labels, g = _embeddings()
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
        losses.append(float(pixel_infonce(student, teacher, labels, generator=torch.Generator().manual_seed(3))))
    assert all(a > b for a, b in zip(losses, losses[1:]))


def test_infonce_weights_preferred_anchors():
    teacher, labels, _ = _embeddings()
    student = torch.randn(2, 16, 12, 12)
    wrong = torch.zeros_like(labels)
    wrong[:, :6] = True
    kwargs = dict(generator=None, student_wrong=wrong, teacher_right=torch.ones_like(labels))
    torch.manual_seed(0)
    plain = pixel_infonce(student, teacher, labels, preference_weight=1.0, **kwargs)
    torch.manual_seed(0)
    weighted = pixel_infonce(student, teacher, labels, preference_weight=5.0, **kwargs)
    assert float(plain) != pytest.approx(float(weighted))


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
    assert all(a < b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("epochs,stage1", [(10, 6), (5, 3), (7, 5), (3, 2), (1, 1), (100, 60)])
def test_stage_switch_at_sixty_percent(epochs, stage1):
    stages = [curriculum_stage(e, epochs, 0.6) for e in range(epochs)]
    assert stages == [1] * stage1 + [2] * (epochs - stage1)


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
        "infonce": objective._contrastive(s_logits, s_dec, t_logits, t_dec, masks, torch.Generator().manual_seed(0)),
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
    before = {k: v.clone() for k, v in objective.teacher.state_dict().items()}
    _, stage1 = objective(images, masks, StepContext(epoch=2, progress=2.5, generator=torch.Generator()))
    loss, stage2 = objective(images, masks, StepContext(epoch=8, progress=8.0, generator=torch.Generator()))
    assert {"mimic", "kl", "omega"} <= set(stage1) and "infonce" not in stage1
    assert {"infonce", "l2"} <= set(stage2) and "kl" not in stage2
    assert float(stage1["omega"]) == pytest.approx(imitation_weight(2.5, 6.0))
    loss.backward()
    assert all(p.grad is None for p in objective.teacher.parameters())
    for k, v in objective.teacher.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not any(n.startswith("teacher.") for n in objective.state_dict())


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
    assert float(loss_on - loss_off) == pytest.approx(0.5 * float(terms_on["kl"]), rel=1e-4)
