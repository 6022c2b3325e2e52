"""export --int8 and benchmark onnx-int8: calibrated on the training split, checked on validation."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_checkpoint
from typer.testing import CliRunner

from microaunet_cli.benchmark import BenchmarkSettings, run_benchmark
from microaunet_cli.cli.app import app
from microaunet_cli.errors import ConfigError, DataError
from microaunet_cli.export import ExportError, ExportSettings, export_checkpoint
from microaunet_cli.export import int8 as int8_tools
from microaunet_cli.export.convert import int8_path

runner = CliRunner()
SIZE = 64
NAME = "microaunet_rt"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    from microaunet_cli.data import PrepareSettings, prepare_dataset

    out = tmp_path_factory.mktemp("project") / "data" / "synthetic"
    prepare_dataset(PrepareSettings(dataset="synthetic", out=out, size=SIZE, synthetic_count=20, workers=1))
    return out


@pytest.fixture(scope="module")
def exported(prepared, tmp_path_factory) -> tuple[Path, str]:
    """One --int8 export through the command line (a few seconds). An untrained network's logits sit
    near 0, where quantisation noise flips pixels (0.92 mean Dice here), so this file only has to
    agree at 0.5 and may lose any accuracy; the default gates are tested below."""
    folder = tmp_path_factory.mktemp("run")
    ckpt = make_checkpoint(folder / "best.pt", NAME, size=SIZE, prepared_dir=prepared)
    result = runner.invoke(
        app,
        [
            "export",
            *("--ckpt", str(ckpt), "--int8", "--calibration-images", "5"),
            *("--set", "int8_min_dice=0.5", "--set", "int8_max_mdice_drop=1"),
        ],
    )
    assert result.exit_code == 0, result.output
    return ckpt, result.output


def test_int8_file_is_quantised_and_agrees_with_fp32(exported, prepared):
    import onnx

    ckpt, output = exported
    out = ckpt.with_name("best.int8.onnx")
    ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    meta = json.loads(Path(str(out) + ".json").read_text())
    agreement = meta["parity"]["mask_agreement"]
    assert agreement["split"] == "val" and agreement["n_images"] > 0
    assert 0.5 <= agreement["mean_dice"] <= 1.0 and agreement["min_dice"] <= agreement["mean_dice"]
    # Each file's recorded mDice, recomputed here with ONNX Runtime on the prepared validation arrays.
    fp32_file, sidecar = ckpt.with_name("best.onnx"), json.loads(Path(str(out) + ".json").read_text())
    for key, path in (("fp32_mdice", fp32_file), ("int8_mdice", out)):
        assert agreement[key] == pytest.approx(_val_mdice(path, prepared, sidecar), abs=1e-9), key
    assert meta["parity"]["min_mean_dice"] == 0.5 and meta["parity"]["max_mdice_drop"] == 1.0
    assert meta["quantization"]["calibration_images"] == 5
    assert "percentile" in meta["quantization"]["activations"]
    assert meta["output"] == "logits" and meta["input_size"] == [SIZE, SIZE]
    assert "INT8" in output and "mean Dice" in output


def _val_mdice(onnx_file: Path, prepared: Path, sidecar: dict) -> float:
    """Mean per-image Dice (empty against empty = 1) of one ONNX file's masks on the validation split."""
    import onnxruntime as ort

    images = np.load(prepared / "val" / "images.npy").astype(np.float32) / 255.0
    masks = np.load(prepared / "val" / "masks.npy") > 0
    x = ((images - np.float32(sidecar["mean"])) / np.float32(sidecar["std"])).transpose(0, 3, 1, 2)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    dices = []
    for image, truth in zip(x, masks):
        pred = session.run(None, {session.get_inputs()[0].name: image[None]})[0][0, 0] > 0
        total = pred.sum() + truth.sum()
        dices.append(1.0 if total == 0 else 2.0 * (pred & truth).sum() / total)
    return float(np.mean(dices))


def test_calibration_draws_distinct_training_images_reproducibly():
    images = np.arange(30)[:, None, None, None] * np.ones((1, 2, 2, 3), dtype=np.uint8)
    picked = int8_tools.pick_calibration(images, 7)
    assert len(picked) == 7 and len({int(p[0, 0, 0]) for p in picked}) == 7
    assert np.array_equal(picked, int8_tools.pick_calibration(images, 7))
    assert len(int8_tools.pick_calibration(images, 100)) == 30


def test_calibration_uses_the_training_split(prepared, tmp_path, monkeypatch):
    from microaunet_cli.data import open_prepared

    seen = []
    real = int8_tools.quantize
    monkeypatch.setattr(
        int8_tools,
        "quantize",
        lambda fp32, out, batches, method: seen.extend(batches) or real(fp32, out, batches, method),
    )
    ckpt = make_checkpoint(tmp_path / "best.pt", NAME, size=SIZE, prepared_dir=prepared)
    export_checkpoint(ExportSettings(ckpt=ckpt, int8=True, calibration_images=1000, int8_min_dice=0.5))
    n_train = len(open_prepared(prepared).load("train"))
    assert sum(len(b) for b in seen) == n_train


@pytest.mark.parametrize(
    ("agreement", "message"),
    [
        (int8_tools.Int8Agreement("val", 4, 0.61, 0.2, 0.70, 0.70), r"disagrees.*0\.6100 < 0\.95"),
        (int8_tools.Int8Agreement("val", 4, 0.99, 0.9, 0.70, 0.68), r"less accurate.*0\.6800.*0\.7000"),
    ],
)
def test_an_int8_model_that_disagrees_or_loses_accuracy_is_an_error_and_removed(
    agreement, message, prepared, tmp_path, monkeypatch
):
    monkeypatch.setattr(int8_tools, "mask_agreement", lambda *a, **k: agreement)
    ckpt = make_checkpoint(tmp_path / "best.pt", NAME, size=SIZE, prepared_dir=prepared)
    with pytest.raises(ExportError, match=message):
        export_checkpoint(ExportSettings(ckpt=ckpt, int8=True, calibration_images=4))
    assert not int8_path(tmp_path / "best.onnx").exists()
    assert (tmp_path / "best.onnx").is_file()  # the fp32 file passed its own check and stays


def test_accuracy_is_scored_against_the_ground_truth_per_image(exported):
    """With the fp32 file's own masks as ground truth, fp32 scores 1 and INT8 scores exactly its
    agreement: the masks are matched to the images in batch order, across batches."""
    from microaunet_cli.onnx_runtime import session

    ckpt, _ = exported
    fp32, int8 = ckpt.with_name("best.onnx"), ckpt.with_name("best.int8.onnx")
    images = np.random.default_rng(0).integers(0, 256, (7, SIZE, SIZE, 3), dtype=np.uint8)
    batches = list(int8_tools.normalized_batches(images, [0.5] * 3, [0.25] * 3, batch=3))
    ref = session(fp32)
    truth = np.concatenate([ref.run(None, {ref.get_inputs()[0].name: x})[0][:, 0] > 0 for x in batches])
    result = int8_tools.mask_agreement(fp32, int8, iter(batches), "val", truth.astype(np.uint8))
    assert result.n_images == 7 and result.fp32_mdice == 1.0
    assert result.int8_mdice == pytest.approx(result.mean_dice)
    assert result.mdice_drop == pytest.approx(1.0 - result.mean_dice)
    assert int8_tools.mask_agreement(fp32, int8, iter(batches), "val").fp32_mdice is None


def test_missing_calibration_data_says_how_to_fix(tmp_path):
    ckpt = make_checkpoint(tmp_path / "best.pt", NAME, size=SIZE, prepared_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match="--data-dir"):
        export_checkpoint(ExportSettings(ckpt=ckpt, int8=True))


def test_missing_quantization_module_says_how_to_install(prepared, tmp_path, monkeypatch):
    import onnxruntime

    monkeypatch.delattr(onnxruntime, "quantization", raising=False)
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)  # import now raises ImportError
    ckpt = make_checkpoint(tmp_path / "best.pt", NAME, size=SIZE, prepared_dir=prepared)
    with pytest.raises(ConfigError, match="pip install"):
        export_checkpoint(ExportSettings(ckpt=ckpt, int8=True))


def test_int8_needs_onnx_format():
    with pytest.raises(ValueError, match="--format onnx"):
        ExportSettings(format="torchscript", int8=True)


def test_agreement_is_per_image_dice():
    a = np.zeros((2, 1, 4, 4), dtype=bool)
    b = a.copy()
    a[0, 0, :2] = True  # 8 pixels
    b[0, 0, :1] = True  # 4 of them: Dice 2·4/12
    assert int8_tools._dice_per_image(a, b) == pytest.approx([8 / 12, 1.0])  # empty/empty scores 1


def test_benchmark_onnx_int8_mode_runs_and_is_interleaved():
    torch.manual_seed(0)
    report = run_benchmark(
        BenchmarkSettings(
            model=["malunet", NAME],
            modes=["onnx", "onnx-int8"],
            size=64,
            repeats=2,
            throughput_repeats=1,
            warmup=1,
            batch=2,
            threads=1,
        )
    )
    rows = {(r.model, r.mode): r for r in report.results}
    assert all(rows[(m, "onnx-int8")].status == "ok" for m in ("malunet", NAME)), rows
    assert "static INT8" in rows[(NAME, "onnx-int8")].note


def _with_identity(ckpt: Path, prepared: Path) -> Path:
    """The checkpoint recording ``prepared`` as the data it trained on, as training records it."""
    from microaunet_cli.checkpoints import load_checkpoint, save_checkpoint
    from microaunet_cli.data import open_prepared

    payload = load_checkpoint(ckpt)
    payload["data_identity"] = open_prepared(prepared).identity()
    save_checkpoint(ckpt, payload)
    return ckpt


def test_int8_at_another_size_than_the_prepared_data_resamples_the_images(prepared, tmp_path, monkeypatch):
    """--size 32 on data prepared at 64: calibration and the gate see 32-px images and masks."""
    shapes = []
    real = int8_tools.mask_agreement
    monkeypatch.setattr(
        int8_tools,
        "mask_agreement",
        lambda fp32, int8, batches, split, masks=None: (
            shapes.append(masks.shape) or real(fp32, int8, batches, split, masks)
        ),
    )
    ckpt = make_checkpoint(tmp_path / "best.pt", NAME, size=SIZE, prepared_dir=prepared)
    settings = ExportSettings(
        ckpt=ckpt, int8=True, size=32, calibration_images=4, int8_min_dice=0.01, int8_max_mdice_drop=1
    )
    result = export_checkpoint(settings)
    assert result.int8 is not None and result.int8.agreement.n_images > 0
    assert shapes and shapes[0][1:] == (32, 32)
    meta = json.loads(Path(str(result.int8.out) + ".json").read_text())
    assert meta["input_size"] == [32, 32]


def test_int8_refuses_a_data_dir_split_otherwise_than_the_checkpoints(prepared, tmp_path):
    """Another split seed puts the checkpoint's test images in train and val: calibrating and gating
    there is refused, naming the folder and the fix; its own folder (or a copy) is accepted."""
    from microaunet_cli.data import PrepareSettings, prepare_dataset

    other = tmp_path / "reshuffled"
    prepare_dataset(
        PrepareSettings(dataset="synthetic", out=other, size=SIZE, synthetic_count=20, workers=1, seed=7)
    )
    ckpt = _with_identity(
        make_checkpoint(tmp_path / "best.pt", NAME, size=SIZE, prepared_dir=prepared), prepared
    )
    settings = ExportSettings(ckpt=ckpt, int8=True, calibration_images=4, data_dir=other)
    with pytest.raises(DataError, match=r"reshuffled.*test images.*--data-dir"):
        export_checkpoint(settings)
    assert not int8_path(tmp_path / "best.onnx").exists()
    ok = export_checkpoint(
        ExportSettings(
            ckpt=ckpt,
            int8=True,
            calibration_images=4,
            data_dir=prepared,
            int8_min_dice=0.01,
            int8_max_mdice_drop=1,
        )
    )
    meta = json.loads(Path(str(ok.int8.out) + ".json").read_text())
    assert meta["quantization"]["data_check"] == "same data as training"


def test_export_help_states_both_int8_gates_with_their_defaults():
    settings = ExportSettings()
    text = " ".join(runner.invoke(app, ["export", "--help"], terminal_width=200).output.split())
    assert "0.98" not in text
    assert f"at most {settings.int8_max_mdice_drop:g} below" in text
    assert f"mean Dice >= {settings.int8_min_dice:g}" in text
