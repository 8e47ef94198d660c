"""VISRunner: weights-only checkpoint loading and the dist-backend rule.

A toy model keeps these tests to a few seconds; tests/test_tools runs the
same paths with a real (tiny) VIS model through tools/train.py.
"""
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.registry import RUNNERS as ROOT_RUNNERS
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from torch.utils.data import Dataset

import mmvis_msts  # noqa: F401  (registers VISRunner)
from mmvis_msts.engine import VISRunner
from mmvis_msts.utils import (MMENGINE_CHECKPOINT_GLOBALS,
                              load_checkpoint_weights_only,
                              mmengine_checkpoint_globals,
                              resolve_dist_backend)

REPO_ROOT = Path(__file__).resolve().parents[2]
TOY_MODEL = 'VISRunnerTestToyModel'


@MODELS.register_module(name=TOY_MODEL)
class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        pred = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((pred - targets)**2).mean())
        return [dict(pred=p) for p in pred]


class ToyDataset(Dataset):
    metainfo = dict(classes=('a', 'b'))

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(
            inputs=torch.tensor([float(i), 1.0]),
            targets=torch.tensor([2.0 * i]))


class ToyMetric(BaseMetric):
    """Returns a numpy scalar, as numpy-based metrics do."""

    def process(self, data_batch, data_samples):
        self.results.extend(float(d['pred']) for d in data_samples)

    def compute_metrics(self, results):
        return dict(mean_pred=np.float64(np.mean(results)))


def runner_kwargs(work_dir: Path, max_iters: int, **kwargs) -> dict:
    loader = dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=2,
        num_workers=0,
        collate_fn=dict(type='default_collate'))
    return dict(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=[ToyMetric()],
        val_cfg=dict(),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=dict(
            type='MultiStepLR', by_epoch=False, milestones=[1, 3]),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        env_cfg=dict(dist_cfg=dict(backend='auto')),
        randomness=dict(seed=0),
        **kwargs)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A VISRunner checkpoint after 2 iterations and a validation."""
    work_dir = tmp_path_factory.mktemp('toy')
    runner = VISRunner(**runner_kwargs(work_dir, max_iters=2))
    runner.train()
    return work_dir / 'iter_2.pth', runner.model.state_dict()


def test_plain_weights_only_load_rejects_runner_checkpoints(trained, tmp_path):
    # This is what mmengine 0.10.7 does on torch >= 2.6 (torch.load without
    # weights_only); if it ever passes, the allow-list can go.
    ckpt, _ = trained
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(ckpt)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(ckpt))
    runner = Runner(**runner_kwargs(tmp_path, max_iters=2))
    with pytest.raises(pickle.UnpicklingError):
        runner.load_checkpoint(str(ckpt))


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


def test_loading_leaves_torch_allow_list_as_it_was(trained):
    ckpt, _ = trained
    before = torch.serialization.get_safe_globals()
    with mmengine_checkpoint_globals():
        assert HistoryBuffer in torch.serialization.get_safe_globals()
    load_checkpoint_weights_only(str(ckpt))
    assert torch.serialization.get_safe_globals() == before
    # a global allowed by someone else before stays allowed afterwards
    torch.serialization.add_safe_globals([HistoryBuffer])
    try:
        with mmengine_checkpoint_globals():
            pass
        assert HistoryBuffer in torch.serialization.get_safe_globals()
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)


class Unexpected:
    """Not something an mmengine checkpoint holds."""


class GetattrReduce:
    """Pickles as ``getattr(owner, name)``."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


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
            pickle.UnpicklingError, match='Unsupported global.*Unexpected'):
        runner.load_checkpoint(bad)


@pytest.mark.parametrize('owner,name', [(HistoryBuffer, '__init__'),
                                        (np.ndarray, 'tofile')])
def test_getattr_only_resolves_history_buffer_statistics(
        trained, tmp_path, owner, name):
    ckpt, _ = trained
    bad = save_with_meta(
        tmp_path / 'getattr.pth', ckpt, extra=GetattrReduce(owner, name))
    with pytest.raises(pickle.UnpicklingError, match='refuses|only resolves'):
        load_checkpoint_weights_only(bad)


def test_numpy1_spelling_of_numpy_globals_loads(trained, tmp_path):
    # numpy < 2 pickles numpy.core.multiarray._reconstruct / .scalar
    ckpt, _ = trained
    src = zipfile.ZipFile(ckpt)
    out = tmp_path / 'numpy1.pth'
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith('data.pkl'):
                assert b'numpy._core.multiarray' in data
                data = data.replace(b'numpy._core.multiarray',
                                    b'numpy.core.multiarray')
            dst.writestr(info, data)
    loaded = load_checkpoint_weights_only(str(out))
    eta = loaded['message_hub']['runtime_info']['eta']
    assert isinstance(eta, np.float64)


def test_allow_list_is_exactly_what_checkpoints_need(trained):
    ckpt, _ = trained
    named = {
        g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
        for g in MMENGINE_CHECKPOINT_GLOBALS
    }
    found = set(torch.serialization.get_unsafe_globals_in_checkpoint(ckpt))
    assert found <= named
    assert found == {
        'mmengine.logging.history_buffer.HistoryBuffer', 'builtins.getattr',
        'numpy.ndarray', 'numpy.dtype', 'numpy._core.multiarray._reconstruct',
        'numpy._core.multiarray.scalar'
    }


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
