"""Does an exported program compute what the eager network computes? Probabilities and masks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from microaunet_cli.export.errors import ParityError
from microaunet_cli.inference.resize import THRESHOLD

# Logits of a batch, from any runtime (torch module, onnxruntime session, ...).
Predict = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Parity:
    batch: int
    max_abs_diff: float  # largest |sigmoid(exported) - sigmoid(eager)| over all pixels
    dice: float  # Dice between the two masks thresholded at 0.5 (1.0 when both are empty)

    def as_dict(self) -> dict:
        return asdict(self)


def mask_dice(a: torch.Tensor, b: torch.Tensor) -> float:
    """Dice of two boolean masks over the whole batch; two empty masks agree perfectly."""
    inter = (a & b).sum().item()
    total = a.sum().item() + b.sum().item()
    return 1.0 if total == 0 else 2.0 * inter / total


def compare(reference: Predict, candidate: Predict, x: torch.Tensor) -> Parity:
    with torch.inference_mode():
        p_ref = torch.sigmoid(reference(x).float())
        p_new = torch.sigmoid(candidate(x).float())
    if p_new.shape != p_ref.shape:
        raise ParityError(f"exported program returned shape {tuple(p_new.shape)} for a batch of "
                          f"{x.shape[0]}, the network {tuple(p_ref.shape)}")
    diff = (p_new - p_ref).abs().max().item()
    return Parity(int(x.shape[0]), diff, mask_dice(p_ref > THRESHOLD, p_new > THRESHOLD))


def require_parity(results: list[Parity], atol: float, min_dice: float, what: str) -> None:
    """Fail loudly when any batch is beyond tolerance: a silent mismatch would ship a wrong model."""
    bad = [r for r in results if not (r.max_abs_diff <= atol and r.dice >= min_dice)]
    if bad:
        worst = ", ".join(f"batch {r.batch}: max |Δp| {r.max_abs_diff:.2e}, Dice {r.dice:.4f}" for r in bad)
        raise ParityError(f"{what} does not match the eager network ({worst}; tolerance |Δp| <= {atol:g}, "
                          f"Dice >= {min_dice:g}); try the other exporter (--exporter) or another opset")
