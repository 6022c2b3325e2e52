"""Deep supervision (train.deep_supervision): side outputs on the decoder, trained, then dropped.

PraNet and its successors supervise the decoder at several strides, each side map upsampled to the
input and scored with the same segmentation loss as the output. Here a network names the decoder
modules to read (``deep_supervision_taps()``: the three coarsest decoder stages, strides 32, 16
and 8); this module hooks them and owns one 1×1 head per tap. The heads belong to the objective, not
to the network: they are trained and saved with the run's state (to resume), never in the network's
weights, so ``fuse()``, export and inference run exactly the graph they run without them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from microaunet_cli.errors import ConfigError

SegLoss = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict]]


class DeepSupervision(nn.Module):
    def __init__(self, model: nn.Module, weight: float) -> None:
        super().__init__()
        taps = getattr(model, "deep_supervision_taps", None)
        if taps is None:
            raise ConfigError(
                f"train.deep_supervision is {weight} but {type(model).__name__} names no decoder "
                f"stages to supervise; set train.deep_supervision=0 for this network"
            )
        modules, channels = zip(*taps())
        self.weight = weight
        self.heads = nn.ModuleList(nn.Conv2d(c, model.num_classes, 1) for c in channels)
        # Filled only between arm() and side_loss(): the network's outputs at other times (validation,
        # a weight average copied from it, export) are never kept.
        self._captured: list[torch.Tensor] | None = None
        store = self._store
        for i, m in enumerate(modules):
            # A plain function (not a bound method): copy.deepcopy of the network (the weight average)
            # then shares it instead of copying this module and its heads along.
            m.register_forward_hook(lambda _m, _inp, out, i=i: store(i, out))

    def _store(self, i: int, out: torch.Tensor) -> None:
        if self._captured is not None:
            self._captured[i] = out

    def arm(self) -> None:
        """Keep the tapped outputs of the next forward pass of the network."""
        self._captured = [None] * len(self.heads)

    def side_loss(self, masks: torch.Tensor, seg_loss: SegLoss) -> torch.Tensor:
        """weight × the mean segmentation loss of the side outputs, each upsampled to the masks."""
        captured, self._captured = self._captured, None
        if captured is None or any(t is None for t in captured):
            raise RuntimeError("deep supervision: the network's forward pass did not reach every tap")
        size = masks.shape[-2:]
        losses = [
            seg_loss(F.interpolate(head(t), size=size, mode="bilinear", align_corners=False), masks)[0]
            for head, t in zip(self.heads, captured)
        ]
        return self.weight * torch.stack(losses).mean()
