"""Data: read Kvasir-SEG / CVC-ClinicDB as distributed, prepare fixed-size arrays, load them.

``prepare_dataset`` writes a prepared folder; ``open_prepared`` reads one for training and evaluation.
Nothing here imports torch at module level, so decoding processes start quickly.
"""

from microaunet_cli.data.prepare import PrepareResult, prepare_dataset
from microaunet_cli.data.prepared import PreparedData, SplitArrays, open_prepared
from microaunet_cli.data.settings import PrepareSettings

__all__ = [
    "PrepareResult",
    "PrepareSettings",
    "PreparedData",
    "SplitArrays",
    "open_prepared",
    "prepare_dataset",
]
