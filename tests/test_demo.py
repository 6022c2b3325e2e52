"""The README's first command, end to end at toy scale: every step runs and the table has both rows."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from microaunet_cli.cli.app import app


def test_demo_runs_the_whole_workflow(tmp_path):
    result = CliRunner().invoke(app, [
        "demo", "--out", str(tmp_path), "--epochs", "1", "--quiet",
        "--set", "count=24", "--set", "size=64", "--set", "bench_size=64", "--set", "bench_repeats=2",
    ])
    assert result.exit_code == 0, result.output
    assert "teacher" in result.output and "student" in result.output and "177,943" in result.output
    assert (tmp_path / "runs" / "synthetic-malunet" / "checkpoints" / "best.pt").is_file()
    assert (tmp_path / "runs" / "synthetic-microaunet_rt-distill" / "checkpoints" / "best.pt").is_file()
    bench = json.loads((tmp_path / "benchmark.json").read_text())
    assert [m["params_total"] for m in bench["models"]] == [177_943, 87_987]
