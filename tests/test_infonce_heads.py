"""The contrastive stage projects only the sampled pixels: the same loss and gradients as projecting
the whole feature map first (the 1×1 heads act on each pixel alone)."""

import torch

from microaunet_cli.losses import pixel_infonce
from microaunet_cli.training.distillation import ProjectionHead


def test_heads_on_sampled_rows_match_heads_on_the_whole_map():
    torch.manual_seed(0)
    s_head, t_head = ProjectionHead(8, 16), ProjectionHead(12, 16)
    student = torch.randn(3, 8, 10, 10, requires_grad=True)
    teacher = torch.randn(3, 12, 10, 10)
    labels = torch.rand(3, 10, 10) > 0.7
    wrong, right = torch.rand(3, 10, 10) > 0.5, torch.rand(3, 10, 10) > 0.4
    common = {"student_wrong": wrong, "teacher_right": right, "n_anchors": 64, "n_negatives": 96}

    whole = pixel_infonce(
        s_head(student), t_head(teacher), labels, generator=torch.Generator().manual_seed(7), **common
    )
    rows = pixel_infonce(
        student,
        teacher,
        labels,
        generator=torch.Generator().manual_seed(7),
        student_head=s_head.rows,
        teacher_head=t_head.rows,
        **common,
    )
    assert float(rows.detach()) > 0.5  # a real loss, not the one-class zero
    torch.testing.assert_close(rows, whole, rtol=1e-5, atol=1e-6)
    grads_whole = torch.autograd.grad(whole, [student, *s_head.parameters(), *t_head.parameters()])
    grads_rows = torch.autograd.grad(rows, [student, *s_head.parameters(), *t_head.parameters()])
    for a, b in zip(grads_whole, grads_rows):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_projection_rows_equal_the_convolution_per_pixel():
    torch.manual_seed(1)
    head = ProjectionHead(5, 7)
    x = torch.randn(2, 5, 4, 3)
    by_map = head(x).permute(0, 2, 3, 1).reshape(-1, 7)
    by_rows = head.rows(x.permute(0, 2, 3, 1).reshape(-1, 5))
    torch.testing.assert_close(by_rows, by_map, rtol=1e-5, atol=1e-6)
