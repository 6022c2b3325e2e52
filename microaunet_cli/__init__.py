"""MicroAUNet: tiny polyp segmentation networks trained by knowledge distillation."""

__version__ = "0.1.0"
