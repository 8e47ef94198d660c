"""train.py on the project's tiny MS-STS config and synthetic data.

MS-STS with its adversarial discriminator trains with an OptimWrapperDict
(model + discriminator); this checks that 2 iterations, validation and a
weights-only resume work through the tools with that optimizer state.
"""
import re
import sys

from tool_fixtures import (MSTS_CONFIG, REPO_ROOT, SMALL_LOADERS, run_tool,
                           val_frames)

from mmvis_msts.utils import load_checkpoint_weights_only


def test_train_validate_and_resume_msts(synthetic_workdir):
    cwd = synthetic_workdir
    train = [
        sys.executable,
        str(REPO_ROOT / 'tools/train.py'),
        str(MSTS_CONFIG)
    ]
    proc = run_tool(
        train + [
            '--work-dir', 'work_dirs/msts', '--cfg-options',
            'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2'
        ] + SMALL_LOADERS, cwd)
    assert 'Iter(train) [2/2]' in proc.stdout
    num_videos = len(val_frames(cwd))
    assert re.search(
        rf'Iter\(val\) \[{num_videos}/{num_videos}\] +youtube_vis/segm_mAP: ',
        proc.stdout)

    proc = run_tool(
        train + [
            '--work-dir', 'work_dirs/msts_resumed', '--resume',
            'work_dirs/msts/iter_2.pth', '--cfg-options',
            'train_cfg.max_iters=3', 'train_cfg.val_interval=10',
            'default_hooks.checkpoint.interval=3'
        ] + SMALL_LOADERS, cwd)
    assert 'resumed epoch: 0, iter: 2' in proc.stdout
    assert 'Iter(train) [3/3]' in proc.stdout
    ckpt = load_checkpoint_weights_only(
        str(cwd / 'work_dirs/msts_resumed/iter_3.pth'))
    # both optimizers (model and discriminator) were saved and resumed
    assert set(ckpt['optimizer']) == {'model', 'discriminator'}
    for state in ckpt['optimizer'].values():
        steps = {int(s['step']) for s in state['state'].values()}
        assert steps == {3}
