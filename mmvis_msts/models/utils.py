"""Helpers shared by the models."""
from mmengine.model import is_model_wrapper
from torch import nn


def unwrap_model(module: nn.Module) -> nn.Module:
    """The module inside a model wrapper (DDP and mmengine's wrappers).

    ``MMSeparateDistributedDataParallel`` wraps each child of a model (the
    head, the discriminator) in its own DDP wrapper: forward passes go
    through the wrapper, so that gradients are synchronised, and every
    other method is called on the module inside.

    Args:
        module (nn.Module): A module, wrapped or not.

    Returns:
        nn.Module: The module itself when it is not wrapped.
    """
    return module.module if is_model_wrapper(module) else module
