"""DataLoader workers that die with the process that started them.

A DataLoader worker only notices that its parent is gone when its index
queue times out (torch's ``ManagerWatchdog``), and a persistent worker
waiting for the next epoch can stay alive long after a SIGKILL of the
training process, holding its memory. On Linux, ``prctl(PR_SET_PDEATHSIG,
SIGKILL)`` makes the kernel kill the worker when its parent thread exits.
"""
import ctypes
import errno
import os
import signal
import sys
from functools import partial
from typing import Callable, Optional

from torch.utils.data import DataLoader

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1


def _die_with_parent(worker_id: int, parent_pid: int,
                     worker_init_fn: Optional[Callable]) -> None:
    """Worker init: SIGKILL on the parent's death, then ``worker_init_fn``.

    Args:
        worker_id (int): The worker's index, given by the DataLoader.
        parent_pid (int): The process that iterates the DataLoader.
        worker_init_fn (Callable, optional): The loader's own init
            function (mmengine's seeding one), called afterwards.

    Raises:
        OSError: If ``prctl`` fails.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(
            code, f'prctl(PR_SET_PDEATHSIG) failed in DataLoader '
            f'worker {worker_id}: {os.strerror(code)}')
    if os.getppid() != parent_pid:
        # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)
    if worker_init_fn is not None:
        worker_init_fn(worker_id)


def tie_workers_to_parent(data_loader: DataLoader) -> None:
    """Make the workers of ``data_loader`` die with the calling process.

    Its ``worker_init_fn`` keeps running in each worker, after the
    ``prctl`` call. Call it before the loader is first iterated, from the
    process (and thread) that will iterate it: the kernel signals the
    worker when that thread exits. Nothing changes for loaders without
    workers or off Linux (there, torch's watchdog remains the only
    guard).

    Args:
        data_loader (DataLoader): A loader not iterated yet.

    Raises:
        OSError: On Linux, if the C library has no ``prctl``
            (``errno.ENOSYS``).
    """
    if data_loader.num_workers == 0 or not sys.platform.startswith('linux'):
        return
    if not hasattr(ctypes.CDLL(None), 'prctl'):
        raise OSError(
            errno.ENOSYS, 'the C library has no prctl; DataLoader '
            'workers could outlive a killed training process')
    data_loader.worker_init_fn = partial(
        _die_with_parent,
        parent_pid=os.getpid(),
        worker_init_fn=data_loader.worker_init_fn)
