"""examples/full_recipe_gpu.sh checked on the CPU at a toy budget: both run folders, the report table
and the step times are written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_full_recipe_script_runs_end_to_end_at_a_toy_budget(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "SMOKE": "1", "OUT": str(out), "MAU": f"{sys.executable} -m microaunet_cli"}
    done = subprocess.run(
        ["bash", str(ROOT / "examples" / "full_recipe_gpu.sh")],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for run in ("teacher", "student"):
        assert (out / "runs" / run / "summary.json").is_file()
        assert (out / "runs" / run / "checkpoints" / "best.pt").is_file()
    report = (out / "report.md").read_text()
    assert "malunet" in report and "microaunet_rt" in report and "distilled" in report
    steps = [line.split("\t")[0] for line in (out / "times.tsv").read_text().splitlines()[1:]]
    assert steps == ["prepare", "teacher", "student", "report"]
