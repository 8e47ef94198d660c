"""mmdet's own tools/train.py and tools/test.py run this project's configs.

The scripts ship in the mmdet wheel (``mmdet/.mim/tools``, what
``mim train mmdet`` runs) and build the runner from mmengine's root
``RUNNERS`` before any default scope is set; the configs' scoped
``runner_type='mmdet.VISRunner'`` has to resolve there. Nothing of this
repository's tools is used: the plugin is only importable (``PYTHONPATH``),
as an installed package would be.
"""
import glob
import json
import re
import sys
from pathlib import Path

import mmdet
from tool_fixtures import MSTS_CONFIG, SMALL_LOADERS, run_tool, val_frames

from mmvis_msts.utils import load_checkpoint_weights_only

MMDET_TOOLS = Path(mmdet.__file__).parent / '.mim' / 'tools'
METRICS = ('youtube_vis/segm_mAP', 'youtube_vis/segm_mAP_50',
           'youtube_vis/segm_mAP_75')


def test_mmdet_train_then_test_the_tiny_msts_config(synthetic_workdir):
    cwd = synthetic_workdir
    proc = run_tool([
        sys.executable,
        str(MMDET_TOOLS / 'train.py'),
        str(MSTS_CONFIG), '--work-dir', 'work_dirs/mmdet_train',
        '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=10',
        'default_hooks.checkpoint.interval=2'
    ] + SMALL_LOADERS, cwd)
    assert 'Iter(train) [2/2]' in proc.stdout
    ckpt = cwd / 'work_dirs/mmdet_train/iter_2.pth'
    saved = load_checkpoint_weights_only(str(ckpt))
    assert saved['meta']['iter'] == 2
    assert set(saved['optimizer']) == {'model', 'discriminator'}

    proc = run_tool([
        sys.executable,
        str(MMDET_TOOLS / 'test.py'),
        str(MSTS_CONFIG),
        str(ckpt), '--work-dir', 'work_dirs/mmdet_test', '--cfg-options'
    ] + SMALL_LOADERS, cwd)
    # the metrics line after the last of the val videos
    num_videos = len(val_frames(cwd))
    (test_line, ) = [
        line for line in proc.stdout.splitlines()
        if f'Iter(test) [{num_videos}/{num_videos}]' in line
        and 'youtube_vis/' in line
    ]
    # the metrics json that test.py's logger wrote holds the same values
    (path, ) = glob.glob(str(cwd / 'work_dirs/mmdet_test/*/2*.json'))
    with open(path) as f:
        written = json.loads(f.read().splitlines()[-1])
    for key in METRICS:
        match = re.search(re.escape(key) + r': (-?\d\.\d{4})\b', test_line)
        assert match, (key, test_line)
        assert f'{written[key]:.4f}' == match.group(1), key
