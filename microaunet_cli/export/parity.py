"""Does an exported program compute what the eager network computes? Probabilities and masks, on
image-like probe inputs.

The probes are smooth colour fields with bright blobs, normalised like data. Pure Gaussian noise is a
poor probe: real images are smooth, so a converter bug that only shows on structured inputs (a wrong
padding mode, a swapped interpolation corner) can hide under noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from microaunet_cli.errors import ParityError
from microaunet_cli.inference.preprocess import normalize_batch
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
        raise ParityError(
            f"exported program returned shape {tuple(p_new.shape)} for a batch of "
            f"{x.shape[0]}, the network {tuple(p_ref.shape)}"
        )
    diff = (p_new - p_ref).abs().max().item()
    return Parity(int(x.shape[0]), diff, mask_dice(p_ref > THRESHOLD, p_new > THRESHOLD))


def require_parity(results: list[Parity], atol: float, min_dice: float, what: str) -> None:
    """Fail loudly when any batch is beyond tolerance: a silent mismatch would ship a wrong model."""
    bad = [r for r in results if not (r.max_abs_diff <= atol and r.dice >= min_dice)]
    if bad:
        worst = ", ".join(f"batch {r.batch}: max |Δp| {r.max_abs_diff:.2e}, Dice {r.dice:.4f}" for r in bad)
        raise ParityError(
            f"{what} does not match the eager network ({worst}; tolerance |Δp| <= {atol:g}, "
            f"Dice >= {min_dice:g}); try the other exporter (--exporter) or another opset"
        )


# Reddish mucosa-like base colour (RGB, 0..1), so inputs sit in the range a trained network saw.
_BASE_RGB = (0.65, 0.35, 0.30)


def image_like_batch(
    batch: int, size: tuple[int, int], mean: Sequence[float], std: Sequence[float], seed: int = 0
) -> torch.Tensor:
    """``batch×3×H×W`` float32 network input built from synthetic uint8 RGB images."""
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    rgb = torch.tensor(_BASE_RGB).view(1, 3, 1, 1) + 0.15 * _smooth_noise(batch, 3, h, w, gen)
    rgb = rgb + 0.35 * _blobs(batch, h, w, gen)  # brighter, polyp-like regions
    images = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    return normalize_batch(images, mean, std)


def _smooth_noise(batch: int, channels: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled bicubically."""
    coarse = torch.rand(batch, channels, max(h // 16, 2), max(w // 16, 2), generator=gen) * 2 - 1
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(-1, 1)


def _blobs(batch: int, h: int, w: int, gen: torch.Generator, count: int = 3) -> torch.Tensor:
    """Sum of a few random elliptical Gaussians per image, in [0, 1]: ``batch×1×H×W``."""
    ys = torch.linspace(0, 1, h).view(1, 1, h, 1)
    xs = torch.linspace(0, 1, w).view(1, 1, 1, w)
    centre = torch.rand(batch, count, 2, generator=gen)
    radius = 0.05 + 0.15 * torch.rand(batch, count, 2, generator=gen)
    cy, cx = centre[..., 0, None, None], centre[..., 1, None, None]
    ry, rx = radius[..., 0, None, None], radius[..., 1, None, None]
    g = torch.exp(-(((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2))
    return g.sum(dim=1, keepdim=True).clamp(0, 1)
