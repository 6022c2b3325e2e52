"""What a command sets over the settings' defaults before the user's sources (``load_settings``'s
``preset``): kept here, free of torch, so a command's ``--help`` can show them."""

from __future__ import annotations

# The student that distill and demo train unless told otherwise: the latency-first design, at least
# 2x faster than the teacher on a CPU at its accuracy (docs/RESULTS.md).
DEFAULT_STUDENT = "microaunet_rt"

# ``distill``: the training settings with the default student as the network.
DISTILL_PRESET = {"model": {"name": DEFAULT_STUDENT}}
