"""Flip test-time augmentation: what it averages, and that evaluate, predict and the API offer it."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import microaunet_cli
from microaunet_cli.cli.app import app
from microaunet_cli.inference.runners import FlipAveraged


@dataclass
class _Fixed:
    """A stand-in network: probabilities given by a function of the batch."""

    fn: object
    input_size: tuple[int, int] = (4, 6)
    threshold: float = 0.5
    description: str = "stand-in"

    def probs(self, images: np.ndarray) -> np.ndarray:
        return self.fn(images)


def test_an_equivariant_network_is_unchanged_by_flips():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 4, 6, 3), dtype=np.uint8)
    red = _Fixed(lambda x: x[..., 0].astype(np.float32) / 255)
    averaged = FlipAveraged(red).probs(images)
    np.testing.assert_allclose(averaged, red.probs(images), rtol=1e-6)
    assert averaged.dtype == np.float32  # as every predictor answers, whatever the average's type


def test_each_flip_is_undone_before_averaging():
    """A network that ignores the image and answers with its column (or row) index: the mirror image's
    answer, flipped back, is the reversed ramp, so the average is (2·ramp + reversed ramp) / 3."""
    images = np.zeros((1, 4, 6, 3), dtype=np.uint8)
    cols = np.broadcast_to(np.arange(6, dtype=np.float32), (1, 4, 6))
    rows = np.broadcast_to(np.arange(4, dtype=np.float32)[:, None], (1, 4, 6))
    by_col = FlipAveraged(_Fixed(lambda x: np.broadcast_to(cols, x.shape[:3]).copy())).probs(images)
    by_row = FlipAveraged(_Fixed(lambda x: np.broadcast_to(rows, x.shape[:3]).copy())).probs(images)
    np.testing.assert_allclose(by_col, (2 * cols + cols[:, :, ::-1]) / 3, rtol=1e-6)
    np.testing.assert_allclose(by_row, (2 * rows + rows[:, ::-1]) / 3, rtol=1e-6)
    wrapped = FlipAveraged(_Fixed(lambda x: x))
    assert wrapped.input_size == (4, 6) and wrapped.threshold == 0.5 and "flip TTA" in wrapped.description


def _photo(path, h=70, w=90):
    rng = np.random.default_rng(1)
    cv2.imwrite(str(path), rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
    return path


def test_api_and_predict_offer_tta(tiny_checkpoint, tmp_path):
    src = _photo(tmp_path / "a.png")
    rgb = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
    plain = microaunet_cli.load(tiny_checkpoint, device="cpu").predict(rgb, return_probs=True)[1]
    seg = microaunet_cli.load(tiny_checkpoint, device="cpu", tta=True)
    flipped = microaunet_cli.load(tiny_checkpoint, device="cpu").predict(
        np.ascontiguousarray(rgb[:, ::-1]), return_probs=True
    )[1][:, ::-1]
    upside = microaunet_cli.load(tiny_checkpoint, device="cpu").predict(
        np.ascontiguousarray(rgb[::-1]), return_probs=True
    )[1][::-1]
    averaged = seg.predict(rgb, return_probs=True)[1]
    np.testing.assert_allclose(averaged, (plain + flipped + upside) / 3, atol=2e-3)
    assert not np.allclose(averaged, plain, atol=1e-4)  # the flips changed something
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "--ckpt",
            str(tiny_checkpoint),
            "--input",
            str(src),
            "--out",
            str(tmp_path / "o"),
            "--tta",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "masks" / "a.png").is_file()


@pytest.mark.parametrize("tta", [False, True])
def test_evaluate_writes_tta_scores_to_their_own_folder(tiny_checkpoint, tmp_path, tta):
    from microaunet_cli.evaluation.evaluate import default_out_dir

    out = default_out_dir(tiny_checkpoint, "test", tta)
    assert out.name == ("eval-test-tta" if tta else "eval-test")
    assert default_out_dir(tiny_checkpoint.parent / "x" / "none", "val").name == "eval-val"
