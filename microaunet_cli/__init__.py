"""MicroAUNet: tiny polyp segmentation networks trained by knowledge distillation.

The Python API (:mod:`microaunet_cli.api`) is re-exported here: ``microaunet_cli.load(path)`` gives a
segmenter, ``microaunet_cli.run_distillation(settings)`` runs teacher training and distillation.
"""

from __future__ import annotations

from typing import Any

from microaunet_cli.version import __version__

__all__ = [
    "DistillResult",
    "Segmenter",
    "VideoReport",
    "VideoSettings",
    "__version__",
    "load",
    "run_distillation",
]
_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    # Imported on first use: `import microaunet_cli` (and every CLI start) stays free of torch.
    if name in _API:
        from microaunet_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'microaunet_cli' has no attribute {name!r}")
