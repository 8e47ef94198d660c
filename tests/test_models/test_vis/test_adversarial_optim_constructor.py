"""VISAdversarialOptimWrapperConstructor: which parameters each optimizer
owns, and param groups merged by their options."""
import pytest
import torch
from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

import mmvis_msts  # noqa: F401
from mmvis_msts.models.vis.adversarial_optim_constructor import \
    merge_param_groups


class TinyVIS(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.head = nn.ModuleDict(
            dict(sampling_offsets=nn.Linear(4, 4), cls=nn.Linear(4, 2)))
        self.discriminator = nn.Linear(4, 1)


def build(model_cfg):
    return OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type='VISAdversarialOptimWrapperConstructor',
            optim_wrapper_cfg=dict(
                model=model_cfg,
                discriminator=dict(
                    type='OptimWrapper', optimizer=dict(type='AdamW',
                                                        lr=1e-3)))))


def param_ids(optimizer):
    return [id(p) for g in optimizer.param_groups for p in g['params']]


@pytest.mark.parametrize('paramwise', [True, False])
def test_discriminator_is_never_in_the_model_optimizer(paramwise):
    model = TinyVIS()
    model_cfg = dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
    if paramwise:
        model_cfg['paramwise_cfg'] = dict(
            custom_keys=dict(sampling_offsets=dict(lr_mult=0.1)))
    wrappers = build(model_cfg)(model)
    vis = [
        id(p) for n, p in model.named_parameters()
        if not n.startswith('discriminator.')
    ]
    assert sorted(param_ids(wrappers['model'].optimizer)) == sorted(vis)
    assert param_ids(wrappers['discriminator'].optimizer) == [
        id(p) for p in model.discriminator.parameters()
    ]


def test_param_groups_merged_by_options():
    model = TinyVIS()
    wrappers = build(
        dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
            paramwise_cfg=dict(
                norm_decay_mult=0.0,
                custom_keys=dict(sampling_offsets=dict(lr_mult=0.1)))))(
                    model)
    groups = wrappers['model'].optimizer.param_groups
    # default / norm without decay / sampling offsets at 0.1 lr
    assert len(groups) == 3
    by_lr_decay = {(g['lr'], g['weight_decay']): g['params'] for g in groups}
    offsets = model.head['sampling_offsets']
    assert by_lr_decay[(1e-4, 1e-4)] == [offsets.weight, offsets.bias]
    norm = model.backbone[1]
    assert by_lr_decay[(1e-3, 0.0)] == [norm.weight, norm.bias]
    assert by_lr_decay[(1e-3, 1e-4)] == [
        model.backbone[0].weight, model.backbone[0].bias,
        model.head['cls'].weight, model.head['cls'].bias
    ]


def test_merge_param_groups_keeps_order_and_options():
    a, b, c = (torch.zeros(1, requires_grad=True) for _ in range(3))
    merged = merge_param_groups([
        dict(params=[a], lr=0.1),
        dict(params=[b], lr=0.2, weight_decay=0.0),
        dict(params=[c], lr=0.1)
    ])
    assert merged == [
        dict(params=[a, c], lr=0.1),
        dict(params=[b], lr=0.2, weight_decay=0.0)
    ]
