"""VISRunner and VISCheckpointHook: checkpoints that survive crashes.

A toy model keeps each test to a second or two. Where mmengine's own
behaviour is the flaw being fixed, the same observation is made on it as
the control (so the assertions can tell the two apart);
tests/test_tools/test_kill_resume.py kills real training processes.
"""
import ctypes
import itertools
import os
import re
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmdet.registry import HOOKS, MODELS
from mmengine.config import Config
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset
from toy_runner import ToyDataset, toy_loader

import mmvis_msts  # noqa: F401  (registers VISRunner and the hooks)
from mmvis_msts.engine import (CheckpointMismatchError, NonFiniteWeightsError,
                               VISRunner)
from mmvis_msts.engine.atomic_files import TMP_SUFFIX, atomic_path
from mmvis_msts.models.vis.loss_guard import NonFiniteLossError, check_losses
from mmvis_msts.utils import load_checkpoint_weights_only

REPO_ROOT = Path(__file__).resolve().parents[2]
TOY_MODEL = 'CrashSafetyTestToy'
# one experiment name per runner: runners of one name share a message hub
RUN_IDS = itertools.count()
# <linux/prctl.h>
PR_GET_PDEATHSIG = 2


@MODELS.register_module(name=TOY_MODEL)
class Toy(BaseModel):
    """Linear regression; ``nan_from_iter``: NaN losses from that iteration.

    Args:
        in_features (int): Input width (2 fits the data).
        num_extra (int): Extra layers, for checkpoints of another model.
        nan_from_iter (int, optional): First 1-based iteration whose loss
            is NaN.
    """

    def __init__(self, in_features=2, num_extra=0, nan_from_iter=None):
        super().__init__()
        self.linear = nn.Linear(in_features, 1)
        self.extra = nn.ModuleList(nn.Linear(1, 1) for _ in range(num_extra))
        self.nan_from_iter = nan_from_iter
        self.num_steps = 0

    def forward(self, inputs, targets=None, mode='loss'):
        return dict(loss=((self.linear(inputs) - targets)**2).mean())

    def train_step(self, data, optim_wrapper):
        # the project's loss guard on mmengine's plain step
        self.num_steps += 1
        loss, log_vars = self.parse_losses(self(**data, mode='loss'))
        if self.nan_from_iter and self.num_steps >= self.nan_from_iter:
            log_vars['loss'] = loss = loss * float('nan')
        check_losses(log_vars, [], 'raise', 'model update')
        optim_wrapper.update_params(loss)
        return log_vars


def build_runner(work_dir,
                 max_iters=3,
                 hook='VISCheckpointHook',
                 runner_type=VISRunner,
                 **kwargs):
    """A runner training the toy model, a checkpoint every iteration."""
    defaults = dict(
        model=dict(type=TOY_MODEL),
        work_dir=str(work_dir),
        experiment_name=f'crash_safety_{next(RUN_IDS)}',
        default_scope='mmdet',
        train_dataloader=toy_loader(),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        default_hooks=dict(
            checkpoint=dict(
                type=hook, interval=1, by_epoch=False, max_keep_ckpts=1)),
        env_cfg=dict(dist_cfg=dict(backend='auto')),
        randomness=dict(seed=0))
    defaults.update(kwargs)
    return runner_type(**defaults)


@pytest.fixture
def trained(tmp_path):
    """A work dir after one iteration: (runner, path of iter_1.pth)."""
    runner = build_runner(tmp_path / 'work_dir', max_iters=1)
    runner.train()
    return runner, tmp_path / 'work_dir' / 'iter_1.pth'


def test_atomic_path_keeps_the_old_file_on_error(tmp_path):
    path = str(tmp_path / 'file.txt')
    with open(path, 'w') as f:
        f.write('old')
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            assert tmp == path + TMP_SUFFIX
            with open(tmp, 'w') as f:
                f.write('half')
            raise RuntimeError('killed')
    assert open(path).read() == 'old'
    assert os.listdir(tmp_path) == ['file.txt']
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            f.write('new')
    assert open(path).read() == 'new'
    assert os.listdir(tmp_path) == ['file.txt']


@pytest.mark.parametrize('hook,previous_kept', [('VISCheckpointHook', True),
                                                ('CheckpointHook', False)])
def test_kept_checkpoint_is_deleted_after_the_new_one_is_written(
        tmp_path, monkeypatch, hook, previous_kept):
    # max_keep_ckpts=1; mmengine's hook (the control) deletes the previous
    # checkpoint before writing the next, so a kill in between leaves none
    work_dir = tmp_path / 'work_dir'
    seen = []
    save = Runner.save_checkpoint

    def save_and_look(runner, out_dir, filename, *args, **kwargs):
        seen.append((filename, sorted(os.listdir(work_dir))))
        save(runner, out_dir, filename, *args, **kwargs)

    monkeypatch.setattr(Runner, 'save_checkpoint', save_and_look)
    runner = build_runner(work_dir, hook=hook)
    runner.train()
    # VISRunner has mmengine write each checkpoint under a temporary name
    assert [name for name, _ in seen
            ] == [f'iter_{i}.pth{TMP_SUFFIX}' for i in (1, 2, 3)]
    for (name, files), previous in zip(seen[1:], ('iter_1.pth', 'iter_2.pth')):
        assert (previous in files) is previous_kept, name
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_3.pth']
    assert (work_dir / 'last_checkpoint').read_text() == \
        str(work_dir / 'iter_3.pth')


@pytest.mark.parametrize('config', [
    'msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py',
    'msts_vis/msts-vis_r50_8xb1-12e_youtubevis2019.py'
])
def test_configs_use_the_vis_checkpoint_hook(config):
    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / config))
    assert cfg.default_hooks.checkpoint.type == 'VISCheckpointHook'
    assert issubclass(HOOKS.get('VISCheckpointHook'), CheckpointHook)


def failing_put(monkeypatch):
    """``LocalBackend.put`` writes half of the bytes, then fails."""

    def put(self, obj, filepath):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
        raise OSError('killed while writing')

    monkeypatch.setattr(LocalBackend, 'put', put)


def test_interrupted_write_keeps_the_previous_checkpoint(trained, monkeypatch):
    runner, ckpt = trained
    saved = ckpt.read_bytes()
    failing_put(monkeypatch)
    with pytest.raises(OSError, match='killed while writing'):
        runner.save_checkpoint(str(ckpt.parent), ckpt.name)
    assert ckpt.read_bytes() == saved
    assert not ckpt.with_name(ckpt.name + TMP_SUFFIX).exists()
    # control: mmengine's save writes in place, so the interrupted write
    # (half of the new bytes) replaces the good checkpoint
    with pytest.raises(OSError, match='killed while writing'):
        Runner.save_checkpoint(runner, str(ckpt.parent), ckpt.name)
    assert 0 < len(ckpt.read_bytes()) < len(saved) * 3 // 4
    with pytest.raises(Exception):
        load_checkpoint_weights_only(str(ckpt))


def test_poisoned_model_is_never_saved(trained):
    runner, ckpt = trained
    saved = ckpt.read_bytes()
    with torch.no_grad():
        runner.model.linear.weight[0, 1] = float('inf')
    with pytest.raises(
            NonFiniteWeightsError,
            match=r'not saving .*iter_1\.pth: linear\.weight of Toy holds '
            r'0 NaN and 1 infinite values \(of 2\)'):
        runner.save_checkpoint(str(ckpt.parent), ckpt.name)
    assert ckpt.read_bytes() == saved
    assert sorted(os.listdir(
        ckpt.parent))[-2:] == ['iter_1.pth', 'last_checkpoint']


def test_no_checkpoint_is_written_after_a_nonfinite_loss(tmp_path):
    work_dir = tmp_path / 'work_dir'
    runner = build_runner(
        work_dir,
        max_iters=4,
        model=dict(type=TOY_MODEL, nan_from_iter=3),
        default_hooks=dict(
            checkpoint=dict(
                type='VISCheckpointHook',
                interval=1,
                by_epoch=False,
                max_keep_ckpts=-1)))
    with pytest.raises(NonFiniteLossError, match='iteration 3 .*loss=nan'):
        runner.train()
    assert sorted(p.name for p in work_dir.glob('*.pth')) == [
        'iter_1.pth', 'iter_2.pth'
    ]
    assert (work_dir / 'last_checkpoint').read_text().endswith('iter_2.pth')
    weights = load_checkpoint_weights_only(str(work_dir /
                                               'iter_2.pth'))['state_dict']
    assert all(torch.isfinite(w).all() for w in weights.values())


class WorkerReport(Dataset):
    """Each item: the worker's parent-death signal and a numpy draw."""

    def __len__(self):
        return 2

    def __getitem__(self, i):
        sig = ctypes.c_int(-1)
        ctypes.CDLL(None).prctl(PR_GET_PDEATHSIG, ctypes.byref(sig))
        return torch.tensor([sig.value, np.random.randint(1 << 30)])


@pytest.mark.skipif(
    not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG: Linux')
def test_workers_die_with_the_parent_and_keep_mmengine_seeding():
    loader_cfg = dict(
        dataset=WorkerReport(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=2,
        num_workers=1,
        collate_fn=dict(type='default_collate'))
    (vis_batch, ) = VISRunner.build_dataloader(dict(loader_cfg), seed=3)
    (mmengine_batch, ) = Runner.build_dataloader(dict(loader_cfg), seed=3)
    assert vis_batch[:, 0].tolist() == [signal.SIGKILL] * 2
    assert mmengine_batch[:, 0].tolist() == [0, 0]
    # mmengine's worker_init_fn still seeded numpy in the worker
    assert vis_batch[:, 1].tolist() == mmengine_batch[:, 1].tolist()


@pytest.mark.parametrize(
    'model,differences',
    [(dict(in_features=3), [
        r'1 weights differ in shape: linear\.weight \(1, 2\) saved, '
        r'\(1, 3\) here$'
    ]),
     (dict(num_extra=7), [
         r'14 weights of this model are not in the checkpoint: '
         r'extra\.0\.weight, extra\.0\.bias, extra\.1\.weight, '
         r'extra\.1\.bias, extra\.2\.weight \(and 9 more\)$',
         r"'optimizer': parameter groups of \(2,\) tensors saved, \(16,\) "
         r'here$'
     ])])
def test_resume_from_another_model_names_the_keys(trained, tmp_path, model,
                                                  differences):
    _, ckpt = trained
    runner = build_runner(
        tmp_path / 'resumed',
        model=dict(type=TOY_MODEL, **model),
        load_from=str(ckpt),
        resume=True)
    with pytest.raises(CheckpointMismatchError) as info:
        runner.train()
    first, *listed, hint = str(info.value).splitlines()
    assert first == (f'cannot resume from {ckpt}: it was saved by another '
                     'model or optimizer set-up than this config builds '
                     '(Toy):')
    assert len(listed) == len(differences)
    for line, pattern in zip(listed, differences):
        assert re.match(r'  - ' + pattern, line), line
    assert 'load_from' in hint


def test_resume_with_other_parameter_groups_names_them(trained, tmp_path):
    _, ckpt = trained
    runner = build_runner(
        tmp_path / 'resumed',
        optim_wrapper=dict(
            optimizer=dict(type='AdamW', lr=0.01),
            paramwise_cfg=dict(custom_keys=dict(bias=dict(lr_mult=2)))),
        load_from=str(ckpt),
        resume=True)
    with pytest.raises(
            CheckpointMismatchError,
            match=r"'optimizer': parameter groups of \(2,\) tensors saved, "
            r'\(1, 1\) here'):
        runner.train()


@pytest.mark.parametrize('runner_type,keeps_seed', [(VISRunner, True),
                                                    (Runner, False)])
def test_resume_without_a_configured_seed_shuffles_as_before(
        tmp_path, runner_type, keeps_seed):
    # the control, mmengine's Runner, builds the sampler with a new seed
    loader = dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_size=1,
        num_workers=0,
        collate_fn=dict(type='default_collate'))
    first = build_runner(
        tmp_path,
        max_iters=1,
        randomness=dict(seed=None),
        train_dataloader=loader)
    first.train()
    saved_seed = first.seed
    resumed = build_runner(
        tmp_path,
        max_iters=2,
        randomness=dict(seed=None),
        train_dataloader=loader,
        resume=True,
        runner_type=runner_type)
    resumed.train()
    assert (resumed.train_dataloader.sampler.seed == saved_seed) is keeps_seed
    assert resumed.seed == saved_seed  # mmengine's resume sets it late
