"""The INT8 gate (export/int8.py): the agreement and accuracy it measures, against Dice counted by hand
on tiny masks, and where exactly it lets a file through. The ONNX sessions are stand-ins whose logits
are the input itself (fp32) or the input shifted (INT8), so every mask is known in advance."""

from __future__ import annotations

import numpy as np
import pytest

from microaunet_cli.errors import ExportError
from microaunet_cli.export import int8 as int8_tools
from microaunet_cli.export.int8 import Int8Agreement, _dice_per_image, mask_agreement, require_agreement


class FakeSession:
    """``run`` returns ``input + shift`` as the logits."""

    class _Input:
        name = "images"

    def __init__(self, shift: float) -> None:
        self.shift = shift

    def get_inputs(self):
        return [self._Input()]

    def run(self, _outputs, feeds):
        return [feeds["images"] + self.shift]


@pytest.fixture
def sessions(monkeypatch):
    shifts = {"fp32.onnx": 0.0, "int8.onnx": -1.0}
    monkeypatch.setattr(int8_tools, "session", lambda path: FakeSession(shifts[str(path)]))


def _logits(*rows: list[float]) -> np.ndarray:
    """N×1×1×W logits, one row of pixels per image."""
    return np.array(rows, np.float32)[:, None, None, :]


def test_dice_per_image_by_hand():
    a = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]], bool)
    b = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 1]], bool)
    # 2·1/3, both empty, 0/1, 2·2/6
    assert _dice_per_image(a, b) == pytest.approx([2 / 3, 1.0, 0.0, 2 / 3])
    # the first two pixels only, as N×1×W: [11]/[10], empty, [10]/[00], [11]/[01]
    assert _dice_per_image(a[:, None, :2], b[:, None, :2]) == pytest.approx([2 / 3, 1.0, 0.0, 2 / 3])


def test_agreement_and_accuracy_over_two_batches(sessions):
    # fp32 masks: logit > 0; INT8 masks: logit > 1 (the stand-in shifts by -1); 0 itself is background
    batches = [_logits([0.5, 2.0, 0.0, -1.0], [2.0, 3.0, 1.0, 0.0]), _logits([0.5, 0.5, 0.0, 0.0])]
    truth = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1]], np.uint8)[:, None, :]
    got = mask_agreement("fp32.onnx", "int8.onnx", iter(batches), "val", truth)
    # fp32: [1100] [1110] [1100]; INT8: [0100] [1100] [0000] (an INT8 logit of exactly 0 is background)
    agreement = [2 * 1 / 3, 2 * 2 / 5, 0.0]
    fp32 = [1.0, 2 * 3 / 7, 0.0]
    int8 = [2 * 1 / 3, 2 * 2 / 6, 0.0]
    assert got.split == "val" and got.n_images == 3
    assert got.mean_dice == pytest.approx(np.mean(agreement))
    assert got.min_dice == pytest.approx(0.0)
    assert got.fp32_mdice == pytest.approx(np.mean(fp32))
    assert got.int8_mdice == pytest.approx(np.mean(int8))
    assert got.mdice_drop == pytest.approx(np.mean(fp32) - np.mean(int8))
    assert got.mdice_drop > 0


def test_without_ground_truth_only_agreement_is_measured(sessions):
    got = mask_agreement("fp32.onnx", "int8.onnx", iter([_logits([3.0, 3.0])]), "val")
    assert (got.mean_dice, got.min_dice) == (1.0, 1.0)
    assert got.fp32_mdice is None and got.int8_mdice is None and got.mdice_drop is None


def test_an_empty_split_is_refused_by_name(sessions):
    with pytest.raises(ExportError, match="the val split is empty: nothing to check the INT8 model on"):
        mask_agreement("fp32.onnx", "int8.onnx", iter([]), "val")


def test_agreement_record():
    r = Int8Agreement("val", 4, 0.9, 0.5, 0.7, 0.75)
    assert r.mdice_drop == pytest.approx(-0.05)  # INT8 better: a negative drop
    assert r.as_dict() == {
        "split": "val",
        "n_images": 4,
        "mean_dice": 0.9,
        "min_dice": 0.5,
        "fp32_mdice": 0.7,
        "int8_mdice": 0.75,
    }
    assert Int8Agreement("val", 1, 1.0, 1.0, None, 0.5).mdice_drop is None
    assert Int8Agreement("val", 1, 1.0, 1.0, 0.5, None).mdice_drop is None


FIX = (
    "the file was removed. Try more calibration images (--calibration-images N), another range method "
    "(--set calibration_method=minmax|entropy), or ship the fp32 model"
)


def test_a_drop_of_exactly_the_allowance_passes_and_one_above_it_fails():
    require_agreement(
        Int8Agreement("val", 4, 0.99, 0.9, 0.70, 0.68), 0.95, "m.onnx", max_mdice_drop=0.02 + 1e-12
    )
    require_agreement(Int8Agreement("val", 4, 0.99, 0.9, 0.5, 0.5), 0.95, "m.onnx", max_mdice_drop=0.0)
    with pytest.raises(ExportError) as err:
        require_agreement(
            Int8Agreement("val", 4, 0.99, 0.9, 0.70, 0.68), 0.95, "m.onnx", max_mdice_drop=0.019
        )
    assert str(err.value) == (
        "INT8 model m.onnx is less accurate than fp32: validation mDice 0.6800 against 0.7000 on 4 val "
        f"images, 0.0200 lower (at most 0.019 allowed); {FIX}"
    )


def test_no_accuracy_gate_without_an_allowance_or_without_ground_truth():
    require_agreement(Int8Agreement("val", 4, 0.99, 0.9, 0.9, 0.1), 0.95, "m.onnx", max_mdice_drop=None)
    require_agreement(Int8Agreement("val", 4, 0.99, 0.9, None, None), 0.95, "m.onnx", max_mdice_drop=0.01)


def test_agreement_of_exactly_the_floor_passes_and_below_it_fails():
    require_agreement(Int8Agreement("val", 4, 0.95, 0.5), 0.95, "m.onnx")
    with pytest.raises(ExportError) as err:
        require_agreement(Int8Agreement("test", 7, 0.9499, 0.25), 0.95, "m.onnx")
    assert str(err.value) == (
        "INT8 model m.onnx disagrees with fp32: mean Dice between their masks (> 0.5) on 7 test images is "
        f"0.9499 < 0.95 (worst image 0.2500); {FIX}"
    )


def test_accuracy_is_checked_before_agreement():
    with pytest.raises(ExportError, match="less accurate"):
        require_agreement(Int8Agreement("val", 4, 0.1, 0.0, 0.9, 0.1), 0.95, "m.onnx", max_mdice_drop=0.01)
