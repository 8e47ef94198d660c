"""tools/train.py, test.py, dist_test.sh and publish_model.py end to end.

One 2-iteration training run of the tiny config (with validation) is shared
by the tests of this module; each tool runs as a subprocess the way a user
calls it.
"""
import glob
import hashlib
import json
import re
import runpy
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from tool_fixtures import (REPO_ROOT, TINY_CONFIG, free_port, run_tool,
                           val_frames)

from mmvis_msts.utils import load_checkpoint_weights_only

TOOLS = REPO_ROOT / 'tools'
AP_KEYS = ('youtube_vis/segm_mAP', 'youtube_vis/segm_mAP_50',
           'youtube_vis/segm_mAP_75', 'youtube_vis/segm_AR@1',
           'youtube_vis/segm_AR@10')


def metrics_of(work_dir: Path) -> dict:
    """The metrics test.py logged (``<work_dir>/<time>/<time>.json``)."""
    (path, ) = glob.glob(str(work_dir / '*' / '2*.json'))
    with open(path) as f:
        return json.loads(f.read().splitlines()[-1])


@pytest.fixture(scope='module')
def trained(synthetic_workdir):
    """train.py: 2 iterations, then validation; returns (cwd, log)."""
    proc = run_tool([
        sys.executable,
        str(TOOLS / 'train.py'),
        str(TINY_CONFIG), '--work-dir', 'work_dirs/train'
    ], synthetic_workdir)
    return synthetic_workdir, proc.stdout


def val_metrics_of(cwd: Path, log: str) -> dict:
    """The AP values of the validation line at the end of a training log."""
    num_videos = len(val_frames(cwd))
    val_line = [
        ln for ln in log.splitlines()
        if f'Iter(val) [{num_videos}/{num_videos}]' in ln
    ][-1]
    metrics = {}
    for key in AP_KEYS:
        match = re.search(re.escape(key) + r': (-?\d\.\d{4})', val_line)
        assert match, key
        metrics[key] = float(match.group(1))
    return metrics


def test_train_two_iterations_and_validate(trained):
    # structure only: the AP of a 2-iteration model is not predictable (the
    # metric's values are checked on fixtures with known APs in
    # tests/test_evaluation; the value here is cross-checked against
    # tools/test.py in test_one_and_two_process_testing_agree)
    cwd, log = trained
    assert 'Iter(train) [2/2]' in log
    assert set(val_metrics_of(cwd, log)) == set(AP_KEYS)
    ckpt = cwd / 'work_dirs/train/iter_2.pth'
    assert sorted(p.name for p in ckpt.parent.glob('*.pth')) == ['iter_2.pth']
    assert load_checkpoint_weights_only(str(ckpt))['meta']['iter'] == 2


def test_resume_from_checkpoint(trained):
    cwd, _ = trained
    proc = run_tool([
        sys.executable,
        str(TOOLS / 'train.py'),
        str(TINY_CONFIG), '--work-dir', 'work_dirs/resume', '--resume',
        'work_dirs/train/iter_2.pth', '--cfg-options', 'train_cfg.max_iters=3',
        'train_cfg.val_interval=10'
    ], cwd)
    assert 'resumed epoch: 0, iter: 2' in proc.stdout
    assert 'Iter(train) [3/3]' in proc.stdout
    assert 'Iter(train) [1/3]' not in proc.stdout
    resumed = load_checkpoint_weights_only(
        str(cwd / 'work_dirs/resume/iter_3.pth'))
    # the loss history continued from the 2 saved iterations
    loss = resumed['message_hub']['log_scalars']['train/loss']
    assert len(loss.data[0]) == 3


def test_one_and_two_process_testing_agree(trained):
    cwd, log = trained
    ckpt = 'work_dirs/train/iter_2.pth'
    run_tool([
        sys.executable,
        str(TOOLS / 'test.py'),
        str(TINY_CONFIG), ckpt, '--work-dir', 'work_dirs/test1', '--out',
        'results/one', '--show-dir', 'painted', '--cfg-options',
        'default_hooks.visualization.frame_interval=1'
    ], cwd)
    # --show-dir: every frame painted, one folder per video
    painted = sorted(
        str(p.relative_to(p.parents[1]))
        for p in (cwd / 'work_dirs/test1').glob('*/painted/*/*.jpg'))
    videos = val_frames(cwd)
    assert painted == sorted(name for names in videos.values()
                             for name in names)
    run_tool([
        'bash',
        str(TOOLS / 'dist_test.sh'),
        str(TINY_CONFIG), ckpt, '2', '--work-dir', 'work_dirs/test2', '--out',
        'results/two'
    ],
             cwd,
             PORT=str(free_port()))
    one, two = metrics_of(cwd / 'work_dirs/test1'), metrics_of(
        cwd / 'work_dirs/test2')
    assert {k: one[k] for k in AP_KEYS} == {k: two[k] for k in AP_KEYS}
    # the checkpoint reloaded by test.py gives the AP validation gave in
    # the training process (printed to 4 decimals)
    assert {k: round(one[k], 4) for k in AP_KEYS} == val_metrics_of(cwd, log)

    # the 2 ranks split the 3 videos; gathered predictions are identical
    tracks = submitted_tracks(cwd, 'one')
    assert submitted_tracks(cwd, 'two') == tracks
    assert {r['video_id'] for r in tracks} == set(videos)


def submitted_tracks(cwd: Path, name: str) -> list:
    """The tracks of ``results/<name>.submission_file.zip``, sorted."""
    with zipfile.ZipFile(cwd / f'results/{name}.submission_file.zip') as z:
        results = json.loads(z.read('results.json'))
    return sorted(results, key=lambda r: (r['video_id'], -r['score']))


def test_compiled_testing_gives_the_eager_predictions(trained):
    # the eager backend: dynamo's graphs run without code generation, so
    # the check takes seconds; docs/inference.md has the inductor figures
    cwd, _ = trained
    logs = {}
    for name, extra in (('eager', []), ('compiled', ['--compile', 'eager'])):
        logs[name] = run_tool([
            sys.executable,
            str(TOOLS / 'test.py'),
            str(TINY_CONFIG), 'work_dirs/train/iter_2.pth', '--work-dir',
            f'work_dirs/{name}', '--out', f'results/{name}', *extra
        ], cwd).stdout
    # TINY_CONFIG is mmdet's Mask2Former-VIS at tiny size
    assert 'torch.compile (eager): backbone, track_head.pixel_decoder' in \
        logs['compiled']
    assert 'torch.compile' not in logs['eager']
    tracks = submitted_tracks(cwd, 'eager')
    assert len(tracks) > 0
    assert submitted_tracks(cwd, 'compiled') == tracks


def test_publish_model(trained, monkeypatch):
    cwd, _ = trained
    monkeypatch.chdir(cwd)
    # in-process (runpy) to spare another interpreter start-up
    monkeypatch.setattr(
        sys, 'argv',
        ['publish_model.py', 'work_dirs/train/iter_2.pth', 'release/tiny.pth'])
    runpy.run_path(
        str(TOOLS / 'model_converters/publish_model.py'), run_name='__main__')
    (published, ) = (cwd / 'release').iterdir()
    sha = hashlib.sha256(published.read_bytes()).hexdigest()
    assert published.name == f'tiny-{sha[:8]}.pth'
    # meta + weights only: loads with torch's default weights-only policy
    release = torch.load(published)
    assert sorted(release) == ['meta', 'state_dict']
    trained_ckpt = load_checkpoint_weights_only(
        str(cwd / 'work_dirs/train/iter_2.pth'))
    assert release['meta']['iter'] == 2
    for key, value in trained_ckpt['state_dict'].items():
        torch.testing.assert_close(release['state_dict'][key], value)
