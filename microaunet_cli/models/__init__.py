"""The networks: ``create_model(name, **kwargs)`` builds any registered one."""

# Importing the modules registers their networks.
from microaunet_cli.models import malunet as _malunet  # noqa: F401
from microaunet_cli.models import microaunet as _microaunet  # noqa: F401
from microaunet_cli.models import microaunet_rt as _microaunet_rt  # noqa: F401
from microaunet_cli.models.registry import count_parameters, create_model, list_models, model_entry
from microaunet_cli.models.reparam import inference_copy

# The student that distill and demo train unless told otherwise: the latency-first design, at least
# 2x faster than the teacher on a CPU at its accuracy (README, Measured).
DEFAULT_STUDENT = "microaunet_rt"

__all__ = [
    "DEFAULT_STUDENT",
    "count_parameters",
    "create_model",
    "inference_copy",
    "list_models",
    "model_entry",
]
