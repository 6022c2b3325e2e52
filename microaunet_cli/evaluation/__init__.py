"""Scoring predictions: metrics in both conventions, checkpoint evaluation, overlays."""

from microaunet_cli.lazy import lazy_exports

# Loaded on first use: it imports torch, and `microaunet evaluate --help` needs only the settings.
_LAZY = {"SegmentationMetrics": "metrics"}
__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = list(_LAZY)
