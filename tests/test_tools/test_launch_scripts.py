"""dist_train.sh on 2 CPU processes (gloo) and slurm_train.sh's srun call."""
import os
import stat
import sys
from pathlib import Path

import pytest
import torch
from tool_fixtures import (MSTS_CONFIG, REPO_ROOT, SMALL_LOADERS, TINY_CONFIG,
                           free_port, run_tool, tool_env, val_frames)

from mmvis_msts.utils import load_checkpoint_weights_only

TOOLS = REPO_ROOT / 'tools'


def test_dist_train_two_cpu_processes(synthetic_workdir):
    cwd = synthetic_workdir
    # log_level=DEBUG makes mmengine write one log file per rank; no CUDA is
    # visible (tool_env), so VISRunner takes the gloo + CPU-DDP path
    run_tool([
        'bash',
        str(TOOLS / 'dist_train.sh'),
        str(TINY_CONFIG), '2', '--work-dir', 'work_dirs/dist', '--cfg-options',
        'log_level=DEBUG'
    ],
             cwd,
             PORT=str(free_port()))
    work_dir = cwd / 'work_dirs/dist'
    rank_logs = {
        rank: list(work_dir.glob(f'*/*rank{rank}.log'))
        for rank in (0, 1)
    }
    num_videos = len(val_frames(cwd))
    for rank, logs in rank_logs.items():
        assert len(logs) == 1, (rank, list(work_dir.rglob('*.log')))
        log = logs[0].read_text()
        # each rank ran both iterations (its own losses) and validation
        # over its share of the val videos (every second one)
        assert 'Iter(train) [2/2]' in log, rank
        share = len(range(rank, num_videos, 2))
        assert f'Iter(val) [{share}/{share}]' in log, rank
    assert 'Distributed training: True' in rank_logs[0][0].read_text()
    # one checkpoint, written by rank 0
    assert [p.name for p in work_dir.glob('*.pth')] == ['iter_2.pth']
    ckpt = load_checkpoint_weights_only(str(work_dir / 'iter_2.pth'))
    assert ckpt['meta']['iter'] == 2


def write_rank_weights_config(cwd: Path) -> Path:
    """MSTS_CONFIG plus :class:`RankWeightsHook` (rank_weights_hook.py)."""
    config = cwd / 'msts_rank_weights.py'
    config.write_text(
        f'_base_ = {str(MSTS_CONFIG)!r}\n'
        "custom_imports = dict(imports=['mmvis_msts', 'rank_weights_hook'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='RankWeightsHook')]\n")
    return config


def test_dist_train_msts_with_discriminator(synthetic_workdir):
    # The main job's MS-STS config names no model wrapper; its discriminator
    # needs one DDP per sub-module (a single DDP stops at the first
    # iteration: "optim_context should be called by each optimizer
    # separately").
    cwd = synthetic_workdir
    run_tool(
        [
            'bash',
            str(TOOLS / 'dist_train.sh'),
            str(write_rank_weights_config(cwd)), '2', '--work-dir',
            'work_dirs/dist_msts', '--cfg-options', 'train_cfg.max_iters=2',
            'train_cfg.val_interval=10', 'default_hooks.checkpoint.interval=2'
        ] + SMALL_LOADERS,
        cwd,
        PORT=str(free_port()),
        PYTHONPATH=os.pathsep.join(
            [str(REPO_ROOT), str(Path(__file__).parent)]))
    work_dir = cwd / 'work_dirs/dist_msts'
    before, after = ({
        rank: torch.load(work_dir / f'rank{rank}_{stage}.pth')
        for rank in (0, 1)
    } for stage in ('before', 'after'))
    assert before[0].keys() == after[0].keys() == after[1].keys()
    for key, value in after[0].items():
        # the ranks trained on different clips, and still agree: the
        # gradients of every sub-module were averaged over both
        torch.testing.assert_close(value, after[1][key], msg=key)
        assert value.isfinite().all(), key
    changed = [
        key for key, value in after[0].items() if value.is_floating_point()
        and not torch.equal(value, before[0][key])
    ]
    for prefix in ('backbone.', 'neck.', 'track_head.', 'discriminator.'):
        assert any(key.startswith(prefix) for key in changed), prefix
    # both optimizers stepped twice; the checkpoint loads
    ckpt = load_checkpoint_weights_only(str(work_dir / 'iter_2.pth'))
    assert set(ckpt['optimizer']) == {'model', 'discriminator'}
    for state in ckpt['optimizer'].values():
        assert {int(s['step']) for s in state['state'].values()} == {2}


def fake_srun(bin_dir: Path, record: Path) -> None:
    """An ``srun`` that records its arguments instead of launching."""
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text('#!/usr/bin/env bash\n'
                    f'printf "%s\\n" "$@" > {record}\n'
                    f'echo "$PYTHONPATH" >> {record}.env\n')
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)


def test_slurm_train_calls_srun_with_slurm_launcher(tmp_path):
    record = tmp_path / 'srun_args'
    fake_srun(tmp_path / 'bin', record)
    env = tool_env(
        PATH=f'{tmp_path / "bin"}{os.pathsep}{os.environ["PATH"]}',
        GPUS='16',
        GPUS_PER_NODE='8',
        SRUN_ARGS='--quotatype=auto --time=1:00:00')
    import subprocess
    proc = subprocess.run([
        'bash',
        str(TOOLS / 'slurm_train.sh'), 'gpu_part', 'msts', 'cfg.py',
        'work_dirs/msts', '--amp', '--cfg-options', 'a=1'
    ],
                          env=env,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    args = record.read_text().splitlines()
    assert args[:8] == [
        '-p', 'gpu_part', '--job-name=msts', '--gres=gpu:8', '--ntasks=16',
        '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1'
    ]
    assert args[8:10] == ['--quotatype=auto', '--time=1:00:00']
    assert args[10:13] == [sys.executable, '-u', str(TOOLS / 'train.py')]
    assert args[13:] == [
        'cfg.py', '--work-dir=work_dirs/msts', '--launcher=slurm', '--amp',
        '--cfg-options', 'a=1'
    ]
    # the repository root is put on PYTHONPATH for the tasks
    pythonpath = (tmp_path / 'srun_args.env').read_text().strip()
    assert Path(pythonpath.split(os.pathsep)[0]).resolve() == REPO_ROOT


@pytest.mark.parametrize('script,num_args', [('dist_train.sh', 1),
                                             ('dist_test.sh', 2),
                                             ('slurm_train.sh', 3)])
def test_scripts_print_usage_on_missing_arguments(script, num_args):
    import subprocess
    proc = subprocess.run(
        ['bash', str(TOOLS / script)] + ['x'] * num_args,
        capture_output=True,
        text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith('usage: ')
