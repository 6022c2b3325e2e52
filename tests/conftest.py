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
def _package_logger_reset():
    """A CLI command sets up the package's logger for a terminal (its own handler, no propagation),
    and a session-scoped fixture may run one before any test: each test starts and ends with the
    logger as a library leaves it, so its records reach pytest's capture whatever ran before."""

    def reset() -> None:
        logger = logging.getLogger("microaunet_cli")
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True

    reset()
    yield
    reset()


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
