"""tools/video_demo.py: a playable mp4 like its input, a metric-ready json."""
import copy
import subprocess
import sys
from pathlib import Path

import cv2
import mmengine
import numpy as np
import pycocotools.mask as mask_util
import pytest
from mmdet.evaluation.functional import YTVIS, YTVISeval

from mmvis_msts.evaluation.metrics.vis_metric import \
    _ytviseval_with_float_alias

REPO = Path(__file__).resolve().parents[2]
CONFIG = 'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py'
NUM_FRAMES, FPS, SIZE = 6, 15.0, (112, 80)  # (W, H)


def write_input_video(path: Path) -> list:
    """A square sliding over noise, written with OpenCV; returns the frames
    as OpenCV decodes them."""
    rng = np.random.default_rng(0)
    w, h = SIZE
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*'mp4v'), FPS, SIZE)
    for t in range(NUM_FRAMES):
        frame = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        frame[20:50, 10 + 8 * t:40 + 8 * t] = (30, 200, 240)
        writer.write(frame)
    writer.release()
    return read_video(path)[0]


def read_video(path: Path) -> tuple:
    capture = cv2.VideoCapture(str(path))
    frames = []
    ok, frame = capture.read()
    while ok:
        frames.append(frame)
        ok, frame = capture.read()
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps


@pytest.mark.parametrize(
    'windows', [['--compile', 'eager'],
                ['--window', '3', '--stride', '2', '--flat-heap', '--bf16']],
    ids=['whole-video', 'clip-wise'])
def test_demo_writes_video_and_results_json(tmp_path, windows):
    inputs = write_input_video(tmp_path / 'input.mp4')
    assert len(inputs) == NUM_FRAMES
    out, out_json = tmp_path / 'out' / 'demo.mp4', tmp_path / 'demo.json'
    proc = subprocess.run([
        sys.executable, 'tools/video_demo.py',
        str(tmp_path / 'input.mp4'), CONFIG, '--out',
        str(out), '--out-json',
        str(out_json), '--score-thr', '0', *windows
    ],
                          cwd=REPO,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'random weights' in proc.stdout
    if '--compile' in windows:
        assert 'torch.compile (eager): backbone, neck' in proc.stdout
    assert 'frame/s' in proc.stderr  # the progress bars

    frames, fps = read_video(out)
    assert len(frames) == NUM_FRAMES
    assert fps == FPS
    assert frames[0].shape == (SIZE[1], SIZE[0], 3)
    # every frame was drawn on (masks over the whole frame at random)
    for drawn, frame in zip(frames, inputs):
        assert np.abs(drawn.astype(int) - frame).mean() > 10

    tracks = mmengine.load(out_json)
    assert len(tracks) > 0
    assert all(len(t['segmentations']) == NUM_FRAMES for t in tracks)
    # the metric's evaluator takes the json: scored against ground truth
    # equal to the predicted tracks, every track is found (AP 1)
    w, h = SIZE
    gt = dict(
        videos=[dict(id=0, width=w, height=h, length=NUM_FRAMES)],
        categories=[dict(id=i + 1, name=str(i)) for i in range(4)],
        annotations=[
            dict(
                copy.deepcopy(t),
                id=i + 1,
                iscrowd=0,
                # None where a track is absent (clip-wise: a track may
                # start or end inside the video)
                areas=[
                    None if s is None else float(mask_util.area(s))
                    for s in t['segmentations']
                ]) for i, t in enumerate(tracks)
        ])
    ytvis = YTVIS(gt)
    evaluator = YTVISeval(ytvis, ytvis.loadRes(str(out_json)), 'segm')
    with _ytviseval_with_float_alias():
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] == 1.0  # mAP


def test_demo_names_a_missing_input(tmp_path):
    missing = tmp_path / 'missing.mp4'
    proc = subprocess.run([
        sys.executable, 'tools/video_demo.py',
        str(missing), CONFIG, '--out',
        str(tmp_path / 'out.mp4')
    ],
                          cwd=REPO,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f'video_demo.py: error: video input {missing} does not exist')
    assert not (tmp_path / 'out.mp4').exists()
