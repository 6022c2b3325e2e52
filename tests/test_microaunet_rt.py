"""microaunet_rt: parameter budget, features for distillation, folding (fuse) and what uses the folded net."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch
from helpers import make_checkpoint
from torch import nn

from microaunet_cli.benchmark import BenchmarkSettings
from microaunet_cli.benchmark.measure import load_subjects
from microaunet_cli.config import DistillSettings
from microaunet_cli.export import ExportSettings, export_checkpoint
from microaunet_cli.models import count_parameters, create_model, inference_copy
from microaunet_cli.models.reparam import ConvBN, RepDWConv
from microaunet_cli.training.distillation import DistillationObjective
from microaunet_cli.training.objectives import StepContext

NAME = "microaunet_rt"


def _randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so that folding has work to do."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            m.bias.data.copy_(torch.rand(n, generator=gen) - 0.5)
    return model


def _calibrated(model: nn.Module, size: int = 64) -> nn.Module:
    """Running statistics from a few training-mode passes, as after training (keeps activations O(1))."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, size, size))
    return model.eval()


def test_fits_the_parameter_budget():
    total, trainable = count_parameters(create_model(NAME))
    assert total == trainable == 87_987
    assert total <= 100_000


@pytest.mark.parametrize("stride,dilation", [(1, 1), (1, 2), (2, 1)])
def test_rep_depthwise_conv_merges_into_one_kernel(stride, dilation):
    block = _randomize_norms(RepDWConv(8, stride, dilation)).eval()
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        want = block(x)
        block.fuse()
        got = block(x)
    assert isinstance(block.fused, nn.Conv2d) and not hasattr(block, "dense")
    assert (got - want).abs().max() < 1e-5


def test_conv_bn_folds_into_the_conv():
    block = _randomize_norms(ConvBN(3, 8, 3, stride=2)).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        want = block(x)
        block.fuse()
        got = block(x)
    assert isinstance(block.bn, nn.Identity) and block.conv.bias is not None
    assert (got - want).abs().max() < 1e-5


def test_fused_network_equals_unfused():
    model = _calibrated(_randomize_norms(create_model(NAME)))
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        want = model(x)
        fused = copy.deepcopy(model).fuse()
        got = fused(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert want.abs().max() > 0.1  # the comparison is not between two near-zero maps
    assert (got - want).abs().max() < 1e-4


def test_fuse_refuses_training_mode():
    with pytest.raises(RuntimeError, match="eval"):
        create_model(NAME).train().fuse()


def test_features_for_distillation_match_the_teacher_shapes():
    student, teacher = create_model(NAME).eval(), create_model("malunet").eval()
    x = torch.randn(2, 3, 64, 128)
    with torch.no_grad():
        logits, skips, dec = student(x, return_features=True)
        _, t_skips, t_dec = teacher(x, return_features=True)
        plain = student(x)
    assert torch.equal(logits, plain)  # handing out features leaves the output alone
    assert [s.shape[-2:] for s in skips] == [t.shape[-2:] for t in t_skips]
    assert [s.shape[1] for s in skips] == list(student.c_list[:5])
    assert dec.shape == (2, student.c_list[0], 32, 64) and dec.shape[-2:] == t_dec.shape[-2:]


@pytest.mark.parametrize("epoch", [0, 9])  # stage 1 (imitation) and stage 2 (contrastive)
def test_distillation_objective_trains_this_student(epoch):
    student, teacher = create_model(NAME), create_model("malunet")
    objective = DistillationObjective(student, teacher, DistillSettings(), epochs=10)
    images, masks = torch.randn(2, 3, 64, 64), (torch.rand(2, 1, 64, 64) > 0.5).float()
    ctx = StepContext(epoch=epoch, progress=float(epoch), generator=torch.Generator().manual_seed(0))
    loss, terms = objective(images, masks, ctx)
    loss.backward()
    assert torch.isfinite(loss)
    assert ("mimic" in terms) == (epoch == 0) and ("infonce" in terms) == (epoch == 9)
    assert student.stem1.conv.weight.grad.abs().sum() > 0


def test_exported_onnx_is_the_folded_network(tmp_path):
    import onnx

    ckpt = make_checkpoint(tmp_path / "best.pt", NAME, size=64)
    result = export_checkpoint(ExportSettings(ckpt=ckpt))
    ops = Counter(node.op_type for node in onnx.load(str(result.out)).graph.node)
    folded = inference_copy(create_model(NAME))
    assert ops["BatchNormalization"] == 0
    # One Conv node per conv of the folded network (the bridge's shared spatial conv runs on three
    # skips): the training branches were merged, not exported.
    convs = sum(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in folded.modules())
    assert ops["Conv"] == convs + 2
    assert all(p.max_abs_diff <= 1e-3 for p in result.parity)  # and it still matches the trained network


def test_benchmark_times_the_folded_network_and_counts_the_trained_one():
    [subject] = load_subjects(BenchmarkSettings(model=[NAME]), torch.device("cpu"))
    assert all(m.fused is not None for m in subject.model.modules() if isinstance(m, RepDWConv))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in subject.model.modules())
    assert subject.params == (87_987, 87_987)
