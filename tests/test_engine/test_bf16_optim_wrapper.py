"""BF16OptimWrapper: bfloat16 autocast in the forward context, float32
parameters, gradients and updates, built from configs on CPU."""
import torch
from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS
from torch import nn

import mmvis_msts  # noqa: F401


def build_wrapper(model, **kwargs):
    return OPTIM_WRAPPERS.build(
        dict(type='BF16OptimWrapper', **kwargs),
        default_args=dict(
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))


def test_forward_runs_in_bfloat16_and_update_in_float32():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    wrapper = build_wrapper(model)
    x = torch.randn(5, 4)
    with wrapper.optim_context(model):
        out = model(x)
        # float32 ops of autocast's CPU policy stay float32
        loss = nn.functional.mse_loss(out, torch.zeros(5, 3))
    assert out.dtype == torch.bfloat16  # linear: autocast's lower list
    assert loss.dtype == torch.float32
    assert model(x).dtype == torch.float32  # outside the context
    weight = model.weight.detach().clone()
    wrapper.update_params(loss)
    assert model.weight.dtype == torch.float32
    assert not torch.equal(model.weight, weight)
    # the SGD step is the float32 gradient of the bfloat16 forward: it
    # matches the float32 forward's within bfloat16's 8-bit mantissa
    ref = nn.Linear(4, 3)
    ref.load_state_dict(dict(weight=weight, bias=model.bias.detach()))
    nn.functional.mse_loss(ref(x), torch.zeros(5, 3)).backward()
    expected = weight - 0.1 * ref.weight.grad
    torch.testing.assert_close(model.weight, expected, rtol=0, atol=2e-3)


def test_adversarial_constructor_builds_it_for_both_keys():
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    model.discriminator = nn.Linear(2, 1)
    optimizer = dict(type='AdamW', lr=1e-3)
    wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type='VISAdversarialOptimWrapperConstructor',
            optim_wrapper_cfg=dict(
                model=dict(type='BF16OptimWrapper', optimizer=optimizer),
                discriminator=dict(
                    type='BF16OptimWrapper', optimizer=optimizer))))(
                        model)
    for key in ('model', 'discriminator'):
        assert type(wrappers[key]).__name__ == 'BF16OptimWrapper'
    with wrappers['discriminator'].optim_context(model.discriminator):
        assert model.discriminator(torch.ones(1, 2)).dtype == torch.bfloat16
