"""Data: read Kvasir-SEG / CVC-ClinicDB as distributed, prepare fixed-size arrays, load them.

``prepare_dataset`` writes a prepared folder; ``open_prepared`` reads one for training and evaluation.
Nothing here imports torch at module level, so decoding processes start quickly.
"""

from microaunet_cli.data.settings import PrepareSettings
from microaunet_cli.lazy import lazy_exports

# Loaded on first use: they import numpy and OpenCV, and `prepare-data --help` needs only the settings.
_LAZY = {
    "PrepareResult": "write_prepared",
    "PreparedData": "prepared",
    "SplitArrays": "prepared",
    "open_prepared": "prepared",
    "prepare_dataset": "write_prepared",
}
__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = ["PrepareSettings"] + list(_LAZY)
