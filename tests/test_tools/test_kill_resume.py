"""SIGKILL tools/train.py, resume it, and get the uninterrupted result.

The tiny MS-STS config (discriminator on, one DataLoader worker) trains
``MAX_ITERS`` iterations of one clip on the small synthetic set (3 clips an
epoch, so the runs cross an epoch boundary), in deterministic mode, with a
checkpoint after every iteration. An uninterrupted run is the reference;
each interrupted run is killed with SIGKILL from outside, at a random
iteration or in the middle of a checkpoint write, then resumed with
``--resume``. Both runs use one intra-op thread (``tool_env``): CPU kernels
split their reductions by thread count, so only runs with the same count
can agree bit for bit.
"""
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import psutil
import pytest
import torch
from tool_fixtures import MSTS_CONFIG, REPO_ROOT, run_tool, tool_env

from mmvis_msts.engine.atomic_files import TMP_SUFFIX
from mmvis_msts.utils import load_checkpoint_weights_only

MAX_ITERS = 5
OPTIONS = [
    f'train_cfg.max_iters={MAX_ITERS}',
    f'train_cfg.val_begin={MAX_ITERS + 1}',  # no validation
    'train_dataloader.batch_size=1',
    'default_hooks.checkpoint.interval=1',
    'default_hooks.checkpoint.max_keep_ckpts=2',
    'default_hooks.logger.interval=1',
    'randomness.seed=0',
    'randomness.deterministic=True',
]
# The temporary file of a checkpoint being written
CHECKPOINT_TMP = re.compile(r'iter_(\d+)\.pth' + re.escape(TMP_SUFFIX))
# Seeds of the kill iteration: after iterations 1 and 3 (the epoch's end)
SEEDS = (2, 5)
# Seconds a killed run's DataLoader worker may take to die
WORKER_GRACE = 10
START_TIMEOUT = 180
SHM = '/dev/shm'


def train_args(work_dir: str, *extra: str) -> list:
    return [
        sys.executable,
        str(REPO_ROOT / 'tools/train.py'),
        str(MSTS_CONFIG), '--work-dir', work_dir, *extra, '--cfg-options',
        *OPTIONS
    ]


def saved_iter(work_dir: Path) -> Optional[int]:
    """The iteration of the checkpoint ``last_checkpoint`` names."""
    try:
        text = (work_dir / 'last_checkpoint').read_text()
    except FileNotFoundError:
        return None
    return int(re.fullmatch(r'.*iter_(\d+)\.pth', text).group(1))


def final_checkpoint(work_dir: Path) -> dict:
    return load_checkpoint_weights_only(
        str(work_dir / f'iter_{MAX_ITERS}.pth'))


@pytest.fixture(scope='module')
def reference(synthetic_workdir) -> dict:
    """The last checkpoint of an uninterrupted run."""
    run_tool(train_args('work_dirs/uninterrupted'), synthetic_workdir)
    return final_checkpoint(synthetic_workdir / 'work_dirs/uninterrupted')


def start(cwd: Path, work_dir: str) -> subprocess.Popen:
    """Start a training; its output goes to ``<cwd>/<work_dir>.log``."""
    with open(cwd / f'{work_dir}.log', 'w') as log:
        return subprocess.Popen(
            train_args(work_dir),
            cwd=cwd,
            env=tool_env(),
            stdout=log,
            stderr=subprocess.STDOUT)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen,
             what: str) -> None:
    """Poll ``condition`` while ``proc`` trains; fail if it ends first."""
    deadline = time.monotonic() + START_TIMEOUT
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            work_dir = proc.args[proc.args.index('--work-dir') + 1]
            pytest.fail(f'training ended or timed out before {what}; see '
                        f'{work_dir}.log in the working directory')
        time.sleep(0.002)


def shared_memory_of(pids: List[int]) -> List[str]:
    """Shared-memory files of torch's ``file_system`` strategy (the
    configs' ``env_cfg.mp_cfg.sharing_strategy``) created by ``pids``:
    ``/dev/shm/torch_<creator pid>_...``."""
    prefixes = tuple(f'torch_{pid}_' for pid in pids)
    return [name for name in os.listdir(SHM) if name.startswith(prefixes)]


def sigkill(proc: subprocess.Popen) -> None:
    """SIGKILL the training process; its DataLoader workers must follow,
    and the batches they had in shared memory must not stay there."""
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers, 'the config trains with DataLoader workers'
    pids = [proc.pid] + [w.pid for w in workers]
    assert shared_memory_of(pids), 'the workers hand batches over in /dev/shm'
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def dead(worker: psutil.Process) -> bool:
        try:  # nobody reaps them here, so they may stay as zombies
            return worker.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + WORKER_GRACE
    while not all(dead(w) for w in workers):
        if time.monotonic() > deadline:
            alive = [w for w in workers if not dead(w)]
            for worker in alive:
                worker.kill()
            pytest.fail(f'DataLoader workers {[w.pid for w in alive]} '
                        f'outlived the killed training by {WORKER_GRACE} s')
        time.sleep(0.05)
    # torch_shm_manager unlinks them once its clients are gone
    while shared_memory_of(pids):
        if time.monotonic() > deadline:
            pytest.fail(f'{shared_memory_of(pids)} left in {SHM} '
                        f'{WORKER_GRACE} s after the kill')
        time.sleep(0.05)


def resume(cwd: Path, work_dir: str, resumed_from: int) -> None:
    log = run_tool(train_args(work_dir, '--resume'), cwd).stdout
    assert re.search(rf'resumed epoch: \d+, iter: {resumed_from}\n', log)
    assert 'Iter(train) [1/' not in log


def assert_same_training(reference: dict, resumed: dict) -> None:
    """Same weights, optimizer states and loss of every iteration."""
    different = [
        name for name, value in reference['state_dict'].items()
        if not torch.equal(value, resumed['state_dict'][name])
    ]
    assert not different, f'{len(different)} weights differ: {different[:5]}'
    for name, state in reference['optimizer'].items():
        for index, tensors in state['state'].items():
            for key, value in tensors.items():
                assert torch.equal(
                    value, resumed['optimizer'][name]['state'][index][key])
    # the same batch at each iteration: the data order continued
    losses = [
        ckpt['message_hub']['log_scalars']['train/loss'].data[0]
        for ckpt in (reference, resumed)
    ]
    assert len(losses[0]) == MAX_ITERS
    assert np.array_equal(*losses)


@pytest.mark.parametrize('seed', SEEDS)
def test_sigkill_at_a_random_iteration_then_resume(synthetic_workdir,
                                                   reference, seed):
    kill_after = random.Random(seed).randint(1, MAX_ITERS - 1)
    work_dir = f'work_dirs/killed_{seed}'
    saved = synthetic_workdir / work_dir
    proc = start(synthetic_workdir, work_dir)
    wait_for(lambda: (saved_iter(saved) or 0) >= kill_after, proc,
             f'the checkpoint of iteration {kill_after}')
    sigkill(proc)
    resumed_from = saved_iter(saved)
    assert resumed_from >= kill_after
    resume(synthetic_workdir, work_dir, resumed_from)
    assert_same_training(reference, final_checkpoint(saved))


def test_sigkill_while_a_checkpoint_is_written(synthetic_workdir, reference):
    work_dir = 'work_dirs/killed_saving'
    saved = synthetic_workdir / work_dir
    proc = start(synthetic_workdir, work_dir)
    caught = []

    def writing() -> bool:
        """Freeze the run while it writes a checkpoint after the first."""
        if saved_iter(saved) is None:
            return False
        tmp = [n for n in os.listdir(saved) if CHECKPOINT_TMP.fullmatch(n)]
        if not tmp:
            return False
        proc.send_signal(signal.SIGSTOP)
        while psutil.Process(proc.pid).status() != psutil.STATUS_STOPPED:
            time.sleep(0.001)
        if (saved / tmp[0]).exists():  # still being written
            caught.append(tmp[0])
            return True
        proc.send_signal(signal.SIGCONT)  # done meanwhile; try the next
        return False

    wait_for(writing, proc, 'a checkpoint write was caught')
    sigkill(proc)
    (tmp, ) = caught
    assert (saved / tmp).exists()
    # last_checkpoint names the previous, complete checkpoint
    resumed_from = saved_iter(saved)
    assert resumed_from == int(CHECKPOINT_TMP.fullmatch(tmp).group(1)) - 1
    path = (saved / 'last_checkpoint').read_text()
    assert load_checkpoint_weights_only(path)['meta']['iter'] == resumed_from
    resume(synthetic_workdir, work_dir, resumed_from)
    assert_same_training(reference, final_checkpoint(saved))
    # the resumed run wrote the same step again, over the leftover
    assert not [n for n in os.listdir(saved) if n.endswith(TMP_SUFFIX)]
