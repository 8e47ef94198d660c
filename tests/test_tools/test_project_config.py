"""train.py on the project's tiny MS-STS config and synthetic data.

MS-STS with its adversarial discriminator trains with an OptimWrapperDict
(model + discriminator); this checks that 2 iterations, validation and a
weights-only resume work through the tools with that optimizer state.
"""
import re
import sys

import pytest

from tool_fixtures import REPO_ROOT, run_tool

from mmvis_msts.datasets.synthetic import (SyntheticVISSettings,
                                           generate_dataset)
from mmvis_msts.utils import load_checkpoint_weights_only

CONFIG = REPO_ROOT / 'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py'
# Tiny loaders for a CPU test: one clip per batch, no worker processes.
SMALL_RUN = [
    'train_dataloader.batch_size=1', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1'
]


@pytest.fixture(scope='module')
def synthetic_workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    generate_dataset(
        SyntheticVISSettings(num_train=3, num_val=3, num_frames=(5, 6)),
        str(root / 'data/synthetic_vis'),
        progress=False)
    return root


def test_train_validate_and_resume_msts(synthetic_workdir):
    cwd = synthetic_workdir
    train = [sys.executable, str(REPO_ROOT / 'tools/train.py'), str(CONFIG)]
    proc = run_tool(
        train + [
            '--work-dir', 'work_dirs/msts', '--cfg-options',
            'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2'
        ] + SMALL_RUN, cwd)
    assert 'Iter(train) [2/2]' in proc.stdout
    assert re.search(r'Iter\(val\) \[3/3\] +youtube_vis/segm_mAP: ',
                     proc.stdout)

    proc = run_tool(
        train + [
            '--work-dir', 'work_dirs/msts_resumed', '--resume',
            'work_dirs/msts/iter_2.pth', '--cfg-options',
            'train_cfg.max_iters=3', 'train_cfg.val_interval=10',
            'default_hooks.checkpoint.interval=3'
        ] + SMALL_RUN, cwd)
    assert 'resumed epoch: 0, iter: 2' in proc.stdout
    assert 'Iter(train) [3/3]' in proc.stdout
    ckpt = load_checkpoint_weights_only(
        str(cwd / 'work_dirs/msts_resumed/iter_3.pth'))
    # both optimizers (model and discriminator) were saved and resumed
    assert set(ckpt['optimizer']) == {'model', 'discriminator'}
    for state in ckpt['optimizer'].values():
        steps = {int(s['step']) for s in state['state'].values()}
        assert steps == {3}
