"""Scoring predictions: metrics in both conventions, checkpoint evaluation, overlays."""

from microaunet_cli.evaluation.metrics import SegmentationMetrics

__all__ = ["SegmentationMetrics"]
