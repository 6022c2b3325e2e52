"""The networks: ``create_model(name, **kwargs)`` builds any registered one."""

# Importing the modules registers their networks.
from microaunet_cli.models import malunet as _malunet  # noqa: F401
from microaunet_cli.models import microaunet as _microaunet  # noqa: F401
from microaunet_cli.models import microaunet_rt as _microaunet_rt  # noqa: F401
from microaunet_cli.models.registry import count_parameters, create_model, list_models, model_entry
from microaunet_cli.models.reparam import inference_copy

__all__ = [
    "count_parameters",
    "create_model",
    "inference_copy",
    "list_models",
    "model_entry",
]
