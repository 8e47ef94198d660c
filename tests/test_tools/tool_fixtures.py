"""A tiny YouTube-VIS-format dataset written at test time.

Three videos of three 64x96 frames with one or two moving boxes each
(classes ``person`` and ``dog``), compressed-RLE masks, the layout
``data/tiny_vis/annotations/train.json`` plus
``data/tiny_vis/train/JPEGImages/<video>/<frame>.jpg``
that ``tests/data/configs/mask2former-vis_r18-tiny_test.py`` reads relative
to the working directory.
"""
import json
import os
import os.path as osp
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO_ROOT / 'tests/data/configs/mask2former-vis_r18-tiny_test.py'
HEIGHT, WIDTH, NUM_FRAMES = 64, 96, 3
# (video name, [(category id, colour BGR, box x0, y0, x1, y1 at frame 0)])
VIDEOS = [
    ('a1b2c3', [(1, (40, 200, 40), 10, 8, 60, 56)]),
    ('d4e5f6', [(2, (200, 60, 40), 30, 4, 90, 60),
                (1, (40, 40, 220), 2, 30, 28, 62)]),
    ('g7h8i9', [(2, (220, 220, 40), 4, 4, 70, 50)]),
]


def write_tiny_vis(root: Path) -> Path:
    """Write the fixture under ``root/data/tiny_vis`` and return that dir."""
    data_root = root / 'data' / 'tiny_vis'
    categories = [dict(id=1, name='person'), dict(id=2, name='dog')]
    videos, images, annotations = [], [], []
    rng = np.random.default_rng(0)
    for video_id, (name, objects) in enumerate(VIDEOS, start=1):
        videos.append(dict(id=video_id, name=name, width=WIDTH, height=HEIGHT))
        frame_dir = data_root / 'train' / 'JPEGImages' / name
        frame_dir.mkdir(parents=True, exist_ok=True)
        for frame_id in range(NUM_FRAMES):
            image_id = len(images) + 1
            file_name = f'{name}/{frame_id:05d}.jpg'
            img = rng.integers(0, 40, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            for obj_idx, (cat, colour, x0, y0, x1, y1) in enumerate(objects):
                # objects drift right by 2 px per frame
                x0, x1 = x0 + 2 * frame_id, min(x1 + 2 * frame_id, WIDTH)
                img[y0:y1, x0:x1] = colour
                mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
                mask[y0:y1, x0:x1] = 1
                rle = mask_util.encode(np.asfortranarray(mask))
                rle['counts'] = rle['counts'].decode()
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        video_id=video_id,
                        image_id=image_id,
                        category_id=cat,
                        instance_id=video_id * 10 + obj_idx,
                        bbox=[x0, y0, x1 - x0, y1 - y0],
                        segmentation=rle,
                        area=float(mask.sum()),
                        iscrowd=0))
            cv2.imwrite(
                str(data_root / 'train' / 'JPEGImages' / file_name), img)
            images.append(
                dict(
                    id=image_id,
                    video_id=video_id,
                    frame_id=frame_id,
                    file_name=file_name,
                    height=HEIGHT,
                    width=WIDTH))
    (data_root / 'annotations').mkdir(parents=True, exist_ok=True)
    with open(data_root / 'annotations' / 'train.json', 'w') as f:
        json.dump(
            dict(
                categories=categories,
                videos=videos,
                images=images,
                annotations=annotations), f)
    return data_root


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
