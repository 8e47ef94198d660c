"""dist_train.sh on 2 CPU processes (gloo) and slurm_train.sh's srun call."""
import os
import stat
import sys
from pathlib import Path

import pytest

from tool_fixtures import REPO_ROOT, TINY_CONFIG, free_port, run_tool, tool_env

from mmvis_msts.utils import load_checkpoint_weights_only

TOOLS = REPO_ROOT / 'tools'


def test_dist_train_two_cpu_processes(tiny_vis_workdir):
    cwd = tiny_vis_workdir
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
    for rank, logs in rank_logs.items():
        assert len(logs) == 1, (rank, list(work_dir.rglob('*.log')))
        log = logs[0].read_text()
        # each rank ran both iterations (its own losses) and validation
        # over its half of the 3 videos (ceil(3 / 2) = 2 and 1)
        assert 'Iter(train) [2/2]' in log, rank
        assert f'Iter(val) [{2 - rank}/{2 - rank}]' in log, rank
    assert 'Distributed training: True' in rank_logs[0][0].read_text()
    # one checkpoint, written by rank 0
    assert [p.name for p in work_dir.glob('*.pth')] == ['iter_2.pth']
    ckpt = load_checkpoint_weights_only(str(work_dir / 'iter_2.pth'))
    assert ckpt['meta']['iter'] == 2


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
