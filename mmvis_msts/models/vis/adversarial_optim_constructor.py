"""Optimizer-wrapper constructor for adversarial VIS training."""
import copy
from typing import List, Optional

from mmdet.registry import (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                            OPTIMIZERS)
from mmengine.optim import (DefaultOptimWrapperConstructor, OptimWrapper,
                            OptimWrapperDict)
from torch import nn

from ..utils import unwrap_model


def merge_param_groups(groups: List[dict]) -> List[dict]:
    """Merge param groups whose options (lr, weight decay, ...) are equal.

    mmengine's constructor gives every parameter its own group once a
    ``paramwise_cfg`` is set, and torch's foreach optimizers batch tensors
    only within a group: with one-tensor groups (367 in the tiny config)
    AdamW ran as a loop of small ops (docs/main_job.md). Order is kept:
    first occurrence of each option set, parameters in model order within a
    group.
    """
    merged = {}
    for group in groups:
        options = tuple(
            sorted((key, value) for key, value in group.items()
                   if key != 'params'))
        if options not in merged:
            merged[options] = dict(group, params=[])
        merged[options]['params'].extend(group['params'])
    return list(merged.values())


class _GroupedConstructor(DefaultOptimWrapperConstructor):
    """Default constructor that may skip one top-level child of the model
    and builds one param group per distinct set of options."""

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None,
                 exclude: Optional[str] = None) -> None:
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

    def __call__(self, model: nn.Module) -> OptimWrapper:
        # always the param-wise path (mmengine takes model.parameters()
        # without a paramwise_cfg, which would not skip `exclude`)
        groups: List[dict] = []
        self.add_params(groups, model)
        optimizer_cfg = dict(self.optimizer_cfg)
        optimizer_cfg['params'] = merge_param_groups(groups)
        optim_wrapper_cfg = dict(self.optim_wrapper_cfg)
        optim_wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(
            optim_wrapper_cfg,
            default_args=dict(optimizer=OPTIMIZERS.build(optimizer_cfg)))


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class VISAdversarialOptimWrapperConstructor:
    """Build ``OptimWrapperDict(model=..., discriminator=...)``.

    ``model`` optimises every parameter except the discriminator's (its
    param groups never contain them, with or without a ``paramwise_cfg``);
    ``discriminator`` only the discriminator's. Each sub-config is an
    ordinary optim-wrapper config and may carry its own ``paramwise_cfg``.
    Parameters with equal options share one param group
    (:func:`merge_param_groups`), so foreach optimizers batch them.

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
        model = unwrap_model(model)
        if getattr(model, 'discriminator', None) is None:
            raise ValueError(f'{type(model).__name__} has no discriminator')
        wrappers = {}
        for key in self.keys:
            cfg = copy.deepcopy(self.optim_wrapper_cfg[key])
            paramwise_cfg = cfg.pop('paramwise_cfg', None)
            if key == 'model':
                constructor = _GroupedConstructor(
                    cfg, paramwise_cfg, exclude='discriminator')
                wrappers[key] = constructor(model)
            else:
                constructor = _GroupedConstructor(cfg, paramwise_cfg)
                wrappers[key] = constructor(model.discriminator)
        return OptimWrapperDict(**wrappers)
