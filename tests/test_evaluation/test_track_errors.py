import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmvis_msts.datasets.converters import encode_rle
from mmvis_msts.evaluation.track_errors import (summarize_track_errors,
                                                track_errors)

H, W = 4, 6


def box(x1, y1, x2, y2):
    mask = np.zeros((H, W), dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


def make_gt():
    """One video of 2 frames: a circle (frames 0, 1) and a star (frame 1)."""
    images = [
        dict(id=i + 1, video_id=1, frame_id=i, height=H, width=W)
        for i in range(2)
    ]
    anns = [
        dict(
            video_id=1,
            image_id=1,
            instance_id=5,
            category_id=1,
            segmentation=encode_rle(box(0, 0, 2, 2))),
        dict(
            video_id=1,
            image_id=2,
            instance_id=5,
            category_id=1,
            segmentation=encode_rle(box(0, 0, 2, 2))),
        dict(
            video_id=1,
            image_id=2,
            instance_id=9,
            category_id=2,
            segmentation=encode_rle(box(2, 0, 6, 2))),
    ]
    return dict(
        images=images,
        annotations=anns,
        categories=[dict(id=1, name='circle'),
                    dict(id=2, name='star')])


def test_best_match_and_its_class():
    circle = [encode_rle(box(0, 0, 2, 2))] * 2
    # covers the star's 8 pixels and 4 more: IoU 8 / 12
    star_ish = [None, encode_rle(box(2, 0, 6, 3))]
    results = [
        dict(video_id=1, score=0.9, category_id=1, segmentations=circle),
        # the same mask again with a lower-scoring class: ignored
        dict(video_id=1, score=0.2, category_id=2, segmentations=circle),
        dict(video_id=1, score=0.6, category_id=1, segmentations=star_ish),
        dict(video_id=1, score=0.5, category_id=2, segmentations=star_ish),
    ]
    errors = track_errors(results, make_gt())
    np.testing.assert_allclose(errors['best_iou'], [1.0, 8 / 12])
    assert errors['gt_labels'].tolist() == [1, 2]
    # the star's best mask scores higher as a circle
    assert errors['pred_labels'].tolist() == [1, 1]
    text = summarize_track_errors(errors)
    assert '| >= 0.5 | 1.00 |' in text and '| >= 0.75 | 0.50 |' in text
    assert 'accuracy of the tracks found at IoU >= 0.5: 0.50 (1 of 2)' in text
    assert '| star | 1 | 0 |' in text


def test_video_without_predictions():
    errors = track_errors([], make_gt())
    assert errors['best_iou'].tolist() == [0.0, 0.0]
    assert errors['pred_labels'].tolist() == [0, 0]
    assert 'nan (0 of 0)' in summarize_track_errors(errors)


def test_frame_count_mismatch_names_the_video():
    results = [
        dict(video_id=1, score=0.9, category_id=1, segmentations=[None])
    ]
    with pytest.raises(ValueError, match='video 1 has 1 frames'):
        track_errors(results, make_gt())


def test_cli_prints_the_summary(tmp_path):
    results = [
        dict(
            video_id=1,
            score=0.9,
            category_id=1,
            segmentations=[encode_rle(box(0, 0, 2, 2))] * 2)
    ]
    (tmp_path / 'results.json').write_text(json.dumps(results))
    (tmp_path / 'gt.json').write_text(json.dumps(make_gt()))
    tool = Path(__file__).resolve().parents[2] / 'tools' / 'analysis_tools' \
        / 'analyze_track_errors.py'
    proc = subprocess.run(
        [sys.executable, str(tool), 'results.json', 'gt.json'],
        cwd=tmp_path,
        capture_output=True,
        text=True)
    assert proc.returncode == 0, proc.stderr
    assert '| >= 0.5 | 0.50 |' in proc.stdout
    proc = subprocess.run(
        [sys.executable, str(tool), 'missing.json', 'gt.json'],
        cwd=tmp_path,
        capture_output=True,
        text=True)
    assert proc.returncode != 0
    assert 'missing.json does not exist' in proc.stderr
