"""Helpers shared by the models."""
from typing import Iterable

from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.model import is_model_wrapper
from torch import nn


def track_sample(frames: Iterable[DetDataSample]) -> TrackDataSample:
    """A video of the given frames (the same frame objects, in order).

    Args:
        frames (Iterable[DetDataSample]): The frames.

    Returns:
        TrackDataSample: Its ``video_data_samples`` are ``frames``.
    """
    video = TrackDataSample()
    video.video_data_samples = list(frames)
    return video


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
