from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _package_logger_restored():
    """A CLI command sets up the package's logger for a terminal (its own handler, no propagation);
    later tests must still see log records through pytest's capture, whatever ran before them."""
    logger = logging.getLogger("microaunet_cli")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.fixture
def shared_data() -> Path:
    """The real Kvasir-SEG / CVC-ClinicDB files; tests that need them skip where they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (a fresh clone has no ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained teacher checkpoint at 64×64 input, as train-teacher lays it out (for predict, video,
    API). Untrained probabilities are not centred on 0.5: tests that compare masks pick a threshold."""
    from helpers import make_checkpoint

    return make_checkpoint(
        tmp_path_factory.mktemp("tiny") / "checkpoints" / "best.pt", model="malunet", size=64
    )
