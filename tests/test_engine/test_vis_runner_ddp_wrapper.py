"""VISRunner.wrap_model: the DDP wrapper follows from the model.

Runs in one process on a one-rank gloo group, so the real wrappers are
built; tests/test_tools/test_launch_scripts.py trains the MS-STS config on
two processes with the wrapper chosen here.
"""
import pytest
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.model import (BaseModel, MMDistributedDataParallel,
                            MMSeparateDistributedDataParallel)

import mmvis_msts  # noqa: F401  (registers VISRunner)
from mmvis_msts.engine import VISRunner


class Generator(BaseModel):
    """A model without a discriminator (no ``with_discriminator``)."""

    def __init__(self):
        super().__init__()
        self.generator = nn.Linear(2, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.generator(inputs)


class WithDiscriminator(Generator):
    """A model with a discriminator child; ``with_discriminator`` as given."""

    def __init__(self, with_discriminator: bool = True):
        super().__init__()
        self.discriminator = nn.Linear(2, 1)
        self.with_discriminator = with_discriminator


@pytest.fixture
def one_rank_group(monkeypatch, tmp_path):
    """A one-process gloo group, as a launcher with one process makes."""
    monkeypatch.setenv('LOCAL_RANK', '0')
    torch_dist.init_process_group(
        'gloo',
        init_method=f'file://{tmp_path / "dist_store"}',
        rank=0,
        world_size=1)
    yield
    torch_dist.destroy_process_group()


def build(model: nn.Module, tmp_path, **cfg) -> VISRunner:
    """A distributed VISRunner of ``model``; ``cfg``: config entries."""
    return VISRunner(
        model=model,
        work_dir=str(tmp_path / 'work_dir'),
        launcher='pytorch',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        cfg=cfg)


def test_discriminator_gets_one_ddp_per_sub_module(one_rank_group, tmp_path):
    runner = build(WithDiscriminator(), tmp_path)
    assert type(runner.model) is MMSeparateDistributedDataParallel
    for name in ('generator', 'discriminator'):
        sub_module = getattr(runner.model.module, name)
        assert type(sub_module) is MMDistributedDataParallel, name
        # mmengine's defaults for a config without model_wrapper_cfg
        assert sub_module.find_unused_parameters is False
        assert sub_module.broadcast_buffers is False
        assert sub_module.device_ids is None  # CPU parameters


def test_without_discriminator_mmengine_default(one_rank_group, tmp_path):
    for model in (Generator(), WithDiscriminator(with_discriminator=False)):
        runner = build(model, tmp_path, find_unused_parameters=True)
        assert type(runner.model) is MMDistributedDataParallel
        assert runner.model.find_unused_parameters is True
        assert runner.model.broadcast_buffers is False


def test_wrapper_settings_without_type_are_kept(one_rank_group, tmp_path):
    runner = build(
        WithDiscriminator(),
        tmp_path,
        model_wrapper_cfg=dict(find_unused_parameters=True))
    assert type(runner.model) is MMSeparateDistributedDataParallel
    discriminator = runner.model.module.discriminator
    assert discriminator.find_unused_parameters is True


def test_single_ddp_over_a_discriminator_model_is_refused(
        one_rank_group, tmp_path):
    with pytest.raises(
            ValueError,
            match="'MMDistributedDataParallel' cannot train WithDiscriminator"
            ".*type='MMSeparateDistributedDataParallel'"):
        build(
            WithDiscriminator(),
            tmp_path,
            model_wrapper_cfg=dict(type='MMDistributedDataParallel'))


def test_unknown_wrapper_type_is_named(one_rank_group, tmp_path):
    with pytest.raises(KeyError, match="type='NoSuchWrapper'"):
        build(
            Generator(),
            tmp_path,
            model_wrapper_cfg=dict(type='NoSuchWrapper'))


class OwnTrainStep(Generator):
    """No discriminator, but a ``train_step`` of its own (a loss guard)."""

    def train_step(self, data, optim_wrapper):
        return super().train_step(data, optim_wrapper)


def test_own_train_step_gets_the_wrapper_that_calls_it(one_rank_group,
                                                       tmp_path):
    # MMDistributedDataParallel.train_step would replace the model's
    runner = build(OwnTrainStep(), tmp_path)
    assert type(runner.model) is MMSeparateDistributedDataParallel
    with pytest.raises(
            ValueError,
            match="cannot train OwnTrainStep: that wrapper's train_step "
            "would replace the model's"):
        build(
            OwnTrainStep(),
            tmp_path,
            model_wrapper_cfg=dict(type='MMDistributedDataParallel'))
