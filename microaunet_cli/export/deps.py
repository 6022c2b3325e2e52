"""Optional dependencies (``pip install 'microaunet-cli[export]'``), imported only when needed."""

from __future__ import annotations

from types import ModuleType

from microaunet_cli.errors import ConfigError

INSTALL_HINT = "pip install 'microaunet-cli[export]'"


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or fail with the command that installs it."""
    try:
        return __import__(module)
    except ImportError:
        raise ConfigError(f"{purpose} needs the '{module}' package, which is not installed: "
                          f"{INSTALL_HINT}") from None


def onnxruntime(purpose: str = "checking an ONNX export") -> ModuleType:
    return require("onnxruntime", purpose)


def onnx(purpose: str = "exporting to ONNX") -> ModuleType:
    # The dynamo exporter also builds its graph with onnxscript.
    require("onnxscript", purpose)
    return require("onnx", purpose)
