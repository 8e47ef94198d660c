"""VISRunner: weights-only checkpoint loading and the dist-backend rule.

A toy model keeps these tests to a few seconds; tests/test_tools runs the
same paths with a real (tiny) VIS model through tools/train.py.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS as ROOT_RUNNERS
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from toy_runner import TOY_MODEL, ToyMetric, runner_kwargs

import mmvis_msts  # noqa: F401  (registers VISRunner)
from mmvis_msts.engine import VISRunner
from mmvis_msts.utils import (UnsafeCheckpointError,
                              load_checkpoint_weights_only,
                              resolve_dist_backend)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A VISRunner checkpoint after 2 iterations and a validation."""
    work_dir = tmp_path_factory.mktemp('toy')
    runner = VISRunner(**runner_kwargs(work_dir, max_iters=2))
    runner.train()
    return work_dir / 'iter_2.pth', runner.model.state_dict()


def test_plain_loaders_read_runner_checkpoints_after_import(trained, tmp_path):
    # torch >= 2.6 loads weights-only by default; after `import mmvis_msts`
    # the allow-list is registered process-wide, so torch's, mmengine's and
    # a plain mmengine Runner's loading all read the runner checkpoint
    ckpt, trained_state = trained
    assert isinstance(torch.load(ckpt)['message_hub'], dict)
    assert _load_checkpoint(str(ckpt))['meta']['iter'] == 2
    runner = Runner(**runner_kwargs(tmp_path, max_iters=2))
    runner.load_checkpoint(str(ckpt))
    for key, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, trained_state[key])


def test_resume_restores_loop_message_hub_and_optimizer(trained, tmp_path):
    ckpt, _ = trained
    saved = load_checkpoint_weights_only(str(ckpt))
    runner = VISRunner(
        **runner_kwargs(tmp_path, max_iters=4),
        load_from=str(ckpt),
        resume=True)
    runner.train()
    assert runner.iter == 4
    loss_history = runner.message_hub.get_scalar('train/loss')
    # 2 resumed values + 2 new ones: the history continued
    assert len(loss_history.data[0]) == 4
    np.testing.assert_allclose(
        loss_history.data[0][:2],
        saved['message_hub']['log_scalars']['train/loss'].data[0])
    # AdamW continued from its 2 saved steps
    adam_state = runner.optim_wrapper.optimizer.state
    assert [int(s['step']) for s in adam_state.values()] == [4, 4]
    # the scheduler state came back too: mmengine fixed its end at the first
    # run's max_iters (2), so the lr stays at the 1e-3 reached at milestone 1
    # (a fresh 4-iteration schedule would reach 1e-4 at milestone 3)
    scheduler = runner.param_schedulers[0]
    assert (scheduler.end, scheduler._global_step) == (2, 4)
    assert runner.optim_wrapper.get_lr()['lr'][0] == pytest.approx(1e-3)
    assert (tmp_path / 'iter_4.pth').exists()


def test_load_from_for_testing(trained, tmp_path):
    ckpt, trained_state = trained
    runner = VISRunner(
        **runner_kwargs(tmp_path, max_iters=2),
        test_dataloader=runner_kwargs(tmp_path, 1)['val_dataloader'],
        test_evaluator=[ToyMetric()],
        test_cfg=dict(),
        load_from=str(ckpt))
    metrics = runner.test()
    for key, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, trained_state[key])
    assert 'mean_pred' in metrics


def test_init_cfg_pretrained_from_runner_checkpoint(trained, tmp_path):
    ckpt, trained_state = trained
    kwargs = runner_kwargs(tmp_path, max_iters=1)
    kwargs['model'].init_cfg = dict(type='Pretrained', checkpoint=str(ckpt))
    runner = VISRunner(**kwargs)
    runner._init_model_weights()
    for key, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, trained_state[key])


class Unexpected:
    """Not something an mmengine checkpoint holds."""


def save_with_meta(path: Path, trained_ckpt: Path, **meta) -> str:
    ckpt = load_checkpoint_weights_only(str(trained_ckpt))
    ckpt['meta'].update(meta)
    torch.save(ckpt, path)
    return str(path)


def test_unexpected_global_is_still_rejected(trained, tmp_path):
    ckpt, _ = trained
    bad = save_with_meta(tmp_path / 'bad.pth', ckpt, extra=Unexpected())
    runner = VISRunner(**runner_kwargs(tmp_path / 'wd', max_iters=2))
    with pytest.raises(
            UnsafeCheckpointError,
            match=r'bad\.pth: not loaded.*test_vis_runner\.Unexpected'):
        runner.load_checkpoint(bad)


def test_root_registry_builds_the_configs_runner_type(tmp_path):
    # mmdet's tools/train.py and test.py (and this repo's) call
    # RUNNERS.build(cfg) on mmengine's root registry before the runner sets
    # the config's default scope; emulate that state with scope 'mmengine'.
    runner_type = Config.fromfile(
        str(REPO_ROOT / 'configs/_base_/default_runtime.py')).runner_type
    cfg = Config(
        dict(
            runner_type=runner_type,
            default_scope='mmdet',
            model=dict(type=TOY_MODEL),
            work_dir=str(tmp_path),
            # its own name: a runner of the same name (one per second by
            # default) would leave the 'mmengine' scope current
            experiment_name='root_registry_test',
            env_cfg=dict(dist_cfg=dict(backend='auto'))))
    init_default_scope('mmengine')
    runner = ROOT_RUNNERS.build(cfg)
    assert type(runner) is VISRunner
    # the unscoped name is only in mmdet's child registry
    init_default_scope('mmengine')
    cfg.runner_type = 'VISRunner'
    with pytest.raises(KeyError, match='VISRunner is not in the runner'):
        ROOT_RUNNERS.build(cfg)


def test_single_process_ignores_dist_backend(tmp_path):
    kwargs = runner_kwargs(tmp_path, max_iters=1)
    kwargs['env_cfg'] = dict(dist_cfg=dict(backend='nccl'))
    runner = VISRunner(**kwargs)  # no CUDA needed without a launcher
    assert not runner.distributed


def test_resolve_dist_backend(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert resolve_dist_backend('auto') == 'gloo'
    assert resolve_dist_backend('gloo') == 'gloo'
    with pytest.raises(ValueError, match="'nccl' needs CUDA"):
        resolve_dist_backend('nccl')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert resolve_dist_backend('auto') == 'nccl'
    assert resolve_dist_backend('nccl') == 'nccl'


@pytest.fixture
def restore_sharing_strategy():
    """Put back the process-wide tensor sharing strategy a test sets."""
    before = torch.multiprocessing.get_sharing_strategy()
    yield
    torch.multiprocessing.set_sharing_strategy(before)


def test_sharing_strategy_from_mp_cfg(tmp_path, restore_sharing_strategy):
    other = ({'file_system', 'file_descriptor'} -
             {torch.multiprocessing.get_sharing_strategy()}).pop()
    kwargs = runner_kwargs(tmp_path, max_iters=1)
    kwargs['env_cfg'] = dict(
        mp_cfg=dict(mp_start_method='fork', sharing_strategy=other))
    VISRunner(**kwargs)
    assert torch.multiprocessing.get_sharing_strategy() == other


def test_unknown_sharing_strategy_names_the_key(tmp_path,
                                                restore_sharing_strategy):
    kwargs = runner_kwargs(tmp_path, max_iters=1)
    kwargs['env_cfg'] = dict(mp_cfg=dict(sharing_strategy='file-system'))
    with pytest.raises(
            ValueError,
            match=r"env_cfg.mp_cfg.sharing_strategy='file-system'.*"
            r"'file_system'"):
        VISRunner(**kwargs)


def test_worker_batches_by_file_name_train_as_in_process_ones(
        tmp_path, restore_sharing_strategy):
    weights = []
    for workers in (0, 1):
        torch.manual_seed(0)  # the same initial weights
        kwargs = runner_kwargs(tmp_path / str(workers), max_iters=2)
        kwargs['env_cfg'] = dict(
            mp_cfg=dict(
                mp_start_method='fork', sharing_strategy='file_system'))
        kwargs['train_dataloader'].update(
            num_workers=workers, persistent_workers=workers > 0)
        runner = VISRunner(**kwargs)
        runner.train()
        weights.append(runner.model.linear.weight.detach().clone())
    # the same seeded batches, so the same two AdamW steps
    assert not torch.equal(weights[0], torch.zeros_like(weights[0]))
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)
