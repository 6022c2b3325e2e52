"""Package attributes imported on first use (PEP 562).

A command's ``--help`` imports the settings module of its package, and with it the package's
``__init__``; re-exports that load torch, numpy or OpenCV are therefore looked up lazily, so help
answers without them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, sources: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name in ``sources`` from its
    submodule (``{"run_benchmark": "measure"}``: ``package.measure.run_benchmark``) when first asked for."""

    def __getattr__(name: str) -> Any:
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{sources[name]}"), name)

    return __getattr__
