"""Distributed set-up that also works on CPU-only hosts."""
import os
from datetime import timedelta

import torch
import torch.distributed as torch_dist

AUTO_BACKEND = 'auto'


def resolve_dist_backend(backend: str = AUTO_BACKEND) -> str:
    """Turn ``'auto'`` into the backend this host can run.

    Args:
        backend (str): ``'auto'`` or any ``torch.distributed`` backend name.
            Defaults to ``'auto'``.

    Returns:
        str: ``'nccl'`` when CUDA is available, ``'gloo'`` otherwise, for
        ``'auto'``; any other name unchanged.

    Raises:
        ValueError: If ``'nccl'`` is asked for on a host without CUDA (the
            process group would fail later with a less helpful message).
    """
    cuda = torch.cuda.is_available()
    if backend == AUTO_BACKEND:
        return 'nccl' if cuda else 'gloo'
    if backend == 'nccl' and not cuda:
        raise ValueError(
            "env_cfg.dist_cfg.backend='nccl' needs CUDA, which this host "
            "does not have; use backend='auto' (gloo on CPU) or 'gloo'.")
    return backend


def init_cpu_dist(launcher: str, backend: str = 'gloo', **kwargs) -> None:
    """Initialise the default process group for CPU-only training.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` before creating
    the group, which fails on a CPU build of torch, so on such hosts the
    group is created here from the launcher's environment variables.

    Args:
        launcher (str): ``'pytorch'`` (``torchrun`` / ``torch.distributed.
            launch``: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set).
        backend (str): A CPU backend. Defaults to ``'gloo'``.
        **kwargs: ``timeout`` (seconds) and other ``init_process_group``
            arguments from ``env_cfg.dist_cfg``.

    Raises:
        NotImplementedError: For the ``'slurm'`` and ``'mpi'`` launchers,
            which are only supported with CUDA (through mmengine).
    """
    if launcher != 'pytorch':
        raise NotImplementedError(
            f"CPU-only distributed runs support launcher='pytorch' "
            f'(tools/dist_train.sh, torchrun), got {launcher!r}.')
    if 'timeout' in kwargs:
        kwargs['timeout'] = timedelta(seconds=kwargs['timeout'])
    torch_dist.init_process_group(
        backend=backend,
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)


def close_dist() -> None:
    """Wait for every rank, then tear the default process group down.

    Called by the tools when a distributed run ends: without it a rank that
    exits first can break a peer still finishing its last collective
    ("Connection closed by peer" under gloo), and torch warns about groups
    left undestroyed.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
