"""Helpers of the tool tests: small generated data and tool subprocesses.

:func:`write_synthetic_vis` generates a small synthetic VIS set (3 train
and 3 val videos of 3-4 frames, with ground truth in both splits) at
``data/synthetic_vis``, the ``data_root`` that the configs on
``configs/_base_/datasets/synthetic_vis.py`` read relative to the working
directory.
"""
import json
import os
import os.path as osp
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

from mmvis_msts.datasets.synthetic import (SyntheticVISSettings,
                                           generate_dataset)

REPO_ROOT = Path(__file__).resolve().parents[2]
# The Mask2Former-VIS anchor of the main job, shrunk to a 2-iteration run.
TINY_CONFIG = REPO_ROOT / 'tests/data/configs/mask2former-vis_r18-tiny_test.py'
# The main job's MS-STS config (discriminator on).
MSTS_CONFIG = REPO_ROOT / \
    'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py'
# --cfg-options that shrink MS-STS_CONFIG's loaders for a CPU test: one
# clip per batch, no worker processes.
SMALL_LOADERS = [
    'train_dataloader.batch_size=1', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1'
]
SYNTHETIC_SETTINGS = SyntheticVISSettings(
    num_train=3, num_val=3, num_frames=(3, 4))


def write_synthetic_vis(root: Path) -> Path:
    """Generate the small set under ``root/data/synthetic_vis``.

    Args:
        root (Path): The working directory of the tools.

    Returns:
        Path: The data root.
    """
    data_root = root / 'data' / 'synthetic_vis'
    generate_dataset(SYNTHETIC_SETTINGS, str(data_root), progress=False)
    return data_root


def val_frames(root: Path) -> Dict[int, List[str]]:
    """The val split as written: video id -> frame file names in order.

    Args:
        root (Path): The working directory given to
            :func:`write_synthetic_vis`.

    Returns:
        dict[int, list[str]]: ``<video>/<frame>.jpg`` names per video id.
    """
    ann_file = root / 'data/synthetic_vis/annotations/val.json'
    with open(ann_file) as f:
        images = json.load(f)['images']
    frames: Dict[int, List[str]] = {}
    for image in sorted(images, key=lambda i: (i['video_id'], i['frame_id'])):
        frames.setdefault(image['video_id'], []).append(image['file_name'])
    return frames


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_tool(args: list,
             cwd: Path,
             timeout: int = 240,
             **env: str) -> subprocess.CompletedProcess:
    """Run a tool; on failure show its output tail in the assertion."""
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=tool_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc


def tool_env(**extra: str) -> dict:
    """Environment for a tool subprocess: this interpreter, one thread, CPU.

    No CUDA device is made visible so the tests exercise the same CPU path
    (gloo, CPU DDP) on every host.
    """
    env = dict(os.environ)
    env.update(
        PYTHON=sys.executable,
        CUDA_VISIBLE_DEVICES='',
        PYTHONPATH=str(REPO_ROOT) +
        (osp.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else ''),
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1')
    env.update(extra)
    return env
