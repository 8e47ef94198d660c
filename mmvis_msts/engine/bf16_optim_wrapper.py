"""bfloat16 autocast training on CPU or GPU, without loss scaling."""
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper
from torch import nn


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward context runs under bfloat16 autocast.

    mmengine's ``AmpOptimWrapper`` refuses CPU-only machines and always
    carries a ``GradScaler``. bfloat16 has float32's exponent range, so its
    gradients need no loss scaling, and CPUs with AVX512-BF16 or AMX run its
    convolutions and matrix products faster than float32's (an R-50 MS-STS
    training step 1.89x, docs/benchmarks.md "bfloat16"). Parameters,
    gradients and the optimiser state stay float32; autocast computes the
    ops of its lower-precision list (convolutions, linear layers, matrix
    products) in bfloat16 and the rest (losses, norms, softmax) in float32.

    Args:
        device_type (str, optional): ``'cpu'`` or ``'cuda'``; by default the
            device of the model's first parameter.
        **kwargs: ``OptimWrapper``'s arguments (``optimizer``,
            ``clip_grad``, ``accumulative_counts``).

    Examples:
        >>> optim_wrapper = dict(
        >>>     type='BF16OptimWrapper',
        >>>     optimizer=dict(type='AdamW', lr=1e-4),
        >>>     clip_grad=dict(max_norm=1.0))
    """

    def __init__(self, device_type: Optional[str] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """``OptimWrapper.optim_context`` plus bfloat16 autocast.

        Args:
            model (nn.Module): The model (or sub-module) of the forward.
        """
        device_type = self.device_type or next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(
                device_type=device_type, dtype=torch.bfloat16):
            yield
