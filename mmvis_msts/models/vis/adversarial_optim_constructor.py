"""Optimizer-wrapper constructor for adversarial VIS training."""
import copy
from typing import Optional

from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn


class _ExcludingConstructor(DefaultOptimWrapperConstructor):
    """Default constructor that skips one top-level child of the model."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict],
                 exclude: str) -> None:
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        self.exclude = exclude

    def add_params(self,
                   params,
                   module: nn.Module,
                   prefix: str = '',
                   **kwargs) -> None:
        if prefix == self.exclude:
            return
        super().add_params(params, module, prefix=prefix, **kwargs)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class VISAdversarialOptimWrapperConstructor:
    """Build ``OptimWrapperDict(model=..., discriminator=...)``.

    ``model`` optimises every parameter except the discriminator's (its
    param groups never contain them); ``discriminator`` only the
    discriminator's. Each sub-config is an ordinary optim-wrapper config and
    may carry its own ``paramwise_cfg``.

    Example:
        >>> optim_wrapper = dict(
        >>>     constructor='VISAdversarialOptimWrapperConstructor',
        >>>     model=dict(type='OptimWrapper',
        >>>                optimizer=dict(type='AdamW', lr=2e-4),
        >>>                paramwise_cfg=dict(custom_keys=dict(
        >>>                    backbone=dict(lr_mult=0.1)))),
        >>>     discriminator=dict(type='OptimWrapper',
        >>>                        optimizer=dict(type='AdamW', lr=2e-4)))

    Args:
        optim_wrapper_cfg (dict): With keys ``model`` and ``discriminator``.
        paramwise_cfg (dict, optional): Must be None (set it per key).
    """

    keys = ('model', 'discriminator')

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        if set(optim_wrapper_cfg) != set(self.keys):
            raise ValueError(f'optim_wrapper needs exactly the keys '
                             f'{self.keys}, got {sorted(optim_wrapper_cfg)}')
        if paramwise_cfg is not None:
            raise ValueError('set paramwise_cfg inside optim_wrapper.model / '
                             '.discriminator, not at the top level')
        self.optim_wrapper_cfg = optim_wrapper_cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if hasattr(model, 'module'):
            model = model.module
        if getattr(model, 'discriminator', None) is None:
            raise ValueError(f'{type(model).__name__} has no discriminator')
        wrappers = {}
        for key in self.keys:
            cfg = copy.deepcopy(self.optim_wrapper_cfg[key])
            paramwise_cfg = cfg.pop('paramwise_cfg', None)
            if key == 'model':
                constructor = _ExcludingConstructor(
                    cfg, paramwise_cfg, exclude='discriminator')
                wrappers[key] = constructor(model)
            else:
                constructor = DefaultOptimWrapperConstructor(
                    cfg, paramwise_cfg)
                wrappers[key] = constructor(model.discriminator)
        return OptimWrapperDict(**wrappers)
