"""Tabular outputs (CSV) written atomically, with floats rounded for reading, not for computing."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from microaunet_cli.fileio import write_text_atomic


def _cell(value: Any) -> Any:
    # Six decimals: well below any difference worth reporting, and the CSV stays readable.
    return f"{value:.6f}" if isinstance(value, float) else value


def write_csv(path: str | Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    write_text_atomic(path, buffer.getvalue())
