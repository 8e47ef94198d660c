"""VISMetric against hand-computed YouTube-VIS APs.

The metric is driven as mmdet's own metric test does: ``dataset_meta``,
``process({}, [track_sample.to_dict()])``, ``evaluate(n)``.

Hand derivations use the YouTube-VIS protocol: AP averages precision over
101 recall points (0, 0.01, ..., 1) and 10 IoU thresholds (0.5:0.05:0.95);
IoU is spatio-temporal (summed intersections over summed unions across
frames); the metric reports 3 decimals.
"""
import json
import zipfile
from typing import List, Optional, Sequence

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.evaluation.metrics import YouTubeVISMetric
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.structures import InstanceData

import mmvis_msts  # noqa: F401  (registers VISMetric)
from mmvis_msts.evaluation import VISMetric, ytvis_results

H, W = 8, 10
CLASSES = ['car', 'train']
KEYS = ('youtube_vis/segm_mAP', 'youtube_vis/segm_mAP_50',
        'youtube_vis/segm_mAP_75', 'youtube_vis/segm_AR@1',
        'youtube_vis/segm_AR@10')


def box_mask(y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


EMPTY = np.zeros((H, W), dtype=bool)


def track(instance_id: int,
          label: int,
          masks: Sequence[Optional[np.ndarray]],
          score: float = 1.0) -> dict:
    """One GT or predicted track: a mask (or None = absent) per frame."""
    return dict(instance_id=instance_id, label=label, masks=masks, score=score)


def make_video(video_id: int, first_img_id: int, gts: List[dict],
               preds: List[dict], num_frames: int) -> TrackDataSample:
    """A TrackDataSample as the model returns it for one whole video."""
    frames = []
    for t in range(num_frames):
        frame = DetDataSample(
            metainfo=dict(
                img_id=first_img_id + t,
                video_id=video_id,
                img_path=f'JPEGImages/video{video_id}/{t:05d}.jpg',
                ori_shape=(H, W),
                frame_id=t,
                ori_video_length=num_frames))
        instances = []
        for gt in gts:
            mask = gt['masks'][t]
            if mask is None:
                continue
            ys, xs = np.nonzero(mask)
            rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
            instances.append(
                dict(
                    bbox=[xs.min(),
                          ys.min(),
                          xs.max() + 1,
                          ys.max() + 1],
                    bbox_label=gt['label'],
                    ignore_flag=0,
                    mask=rle,
                    instance_id=gt['instance_id']))
        frame.set_metainfo(dict(instances=instances))
        # query-based models emit every track on every frame, empty where
        # the object is absent
        masks = [
            p['masks'][t] if p['masks'][t] is not None else EMPTY
            for p in preds
        ]
        frame.pred_track_instances = InstanceData(
            masks=torch.from_numpy(np.stack(masks)) if preds else torch.zeros(
                (0, H, W), dtype=torch.bool),
            bboxes=torch.zeros((len(preds), 4)),
            scores=torch.tensor([p['score'] for p in preds]),
            labels=torch.tensor([p['label'] for p in preds], dtype=torch.long),
            instances_id=torch.tensor([p['instance_id'] for p in preds],
                                      dtype=torch.long))
        frames.append(frame)
    return TrackDataSample(video_data_samples=frames)


def evaluate(videos: List[TrackDataSample], **kwargs) -> dict:
    metric = METRICS.build(dict(type='VISMetric', **kwargs))
    metric.dataset_meta = dict(classes=CLASSES)
    for video in videos:
        metric.process({}, [video.to_dict()])
    return metric.evaluate(len(videos))


def test_registered_and_reports_leaderboard_keys():
    assert METRICS.get('VISMetric') is VISMetric
    gt = track(1, 0, [box_mask(0, 0, 4, 4)])
    results = evaluate([make_video(1, 1, [gt], [gt], num_frames=1)])
    assert tuple(results) == KEYS


def test_perfect_predictions_score_one():
    a = [box_mask(0, 0, 4, 4), box_mask(1, 1, 5, 5), None]
    b = [box_mask(4, 5, 8, 10), box_mask(4, 4, 8, 9), box_mask(4, 3, 8, 8)]
    c = [box_mask(2, 2, 6, 8), box_mask(2, 3, 6, 9)]
    videos = [
        make_video(
            1, 1, [track(1, 0, a), track(2, 1, b)],
            [track(7, 0, a, 0.9), track(8, 1, b, 0.8)], 3),
        make_video(2, 4, [track(3, 1, c)], [track(1, 1, c, 0.7)], 2),
    ]
    results = evaluate(videos)
    assert results == {key: 1.0 for key in KEYS}


def test_one_of_two_tracks_found():
    # Two GT tracks of one class, one exact prediction: recall 0.5 at
    # precision 1 at every IoU threshold, so AP = 51/101 (recall points
    # 0..0.5) and AR = 0.5.
    a = [box_mask(0, 0, 4, 4)] * 3
    b = [box_mask(4, 5, 8, 10)] * 3
    video = make_video(1, 1, [track(1, 0, a), track(2, 0, b)],
                       [track(1, 0, a, 0.9)], 3)
    ap = round(51 / 101, 3)
    assert evaluate([video]) == dict(zip(KEYS, (ap, ap, ap, 0.5, 0.5)))


def test_wrong_class_scores_zero():
    # The exact masks, labelled 'train' instead of 'car'. 'car' has a GT
    # track and no detection: precision and recall 0. 'train' has no GT
    # track: precision -1, which the mean over classes leaves out. Every
    # number is 0.
    gt = [box_mask(0, 0, 4, 5)] * 2
    video = make_video(1, 1, [track(1, 0, gt)], [track(1, 1, gt, 0.9)], 2)
    assert evaluate([video]) == dict.fromkeys(KEYS, 0.0)


def test_mean_over_classes_with_one_class_missed():
    # A 'car' and a 'train' track; only the car is predicted (exactly).
    # car: AP 1, recall 1; train: AP 0, recall 0 (GT, no detection). Each
    # number is the mean over the 2 classes: 0.5.
    car = [box_mask(0, 0, 4, 4)] * 3
    train = [box_mask(4, 5, 8, 10)] * 3
    video = make_video(1, 1,
                       [track(1, 0, car), track(2, 1, train)],
                       [track(1, 0, car, 0.9)], 3)
    assert evaluate([video]) == dict.fromkeys(KEYS, 0.5)


def test_interpolated_precision_after_a_false_positive():
    # Two GT cars; detections by score: exact match of A (0.9), a false
    # positive that overlaps neither (0.8), exact match of B (0.7).
    # Cumulative precision (1, 1/2, 2/3) at recall (1/2, 1/2, 1);
    # interpolated (max to the right): (1, 2/3, 2/3). COCO's 101 recall
    # points: 0, 0.01, ..., 0.5 (51 points) take precision 1 and
    # 0.51, ..., 1 (50 points) take 2/3, at every IoU threshold:
    # AP = (51 + 50 * 2/3) / 101 = 0.835. AR@1 keeps the first detection
    # of the video (recall 1/2), AR@10 all three (recall 1).
    a = [box_mask(0, 0, 4, 4)] * 2
    b = [box_mask(4, 5, 8, 10)] * 2
    fp = [box_mask(0, 6, 3, 10)] * 2
    video = make_video(
        1, 1, [track(1, 0, a), track(2, 0, b)],
        [track(1, 0, a, 0.9),
         track(2, 0, fp, 0.8),
         track(3, 0, b, 0.7)], 2)
    ap = round((51 + 50 * 2 / 3) / 101, 3)
    assert evaluate([video]) == dict(zip(KEYS, (ap, ap, ap, 0.5, 1.0)))


def test_spatio_temporal_iou_between_thresholds():
    # GT: a 4x4 box on all 3 frames (48 px). Prediction: the same box on
    # frames 0-1, empty on frame 2 -> IoU = 32 / 48 = 2/3. It matches at
    # IoU thresholds 0.50, 0.55, 0.60, 0.65 and misses from 0.70 on:
    # AP50 = 1, AP75 = 0, mAP = 4/10, AR = 4/10.
    gt = [box_mask(2, 3, 6, 7)] * 3
    pred = [box_mask(2, 3, 6, 7), box_mask(2, 3, 6, 7), None]
    video = make_video(1, 1, [track(1, 1, gt)], [track(5, 1, pred, 0.8)], 3)
    assert evaluate([video]) == dict(zip(KEYS, (0.4, 1.0, 0.0, 0.4, 0.4)))


def test_false_positive_ranked_first():
    # Higher-scored false positive, then the exact match: precisions
    # (0, 1/2) at recalls (0, 1) -> interpolated precision 1/2 everywhere,
    # AP = 0.5 at every threshold. AR@1 only sees the false positive.
    gt = [box_mask(0, 0, 4, 5)] * 2
    fp = [box_mask(5, 6, 8, 10)] * 2
    video = make_video(
        1, 1, [track(1, 0, gt)],
        [track(1, 0, fp, 0.9), track(2, 0, gt, 0.6)], 2)
    assert evaluate([video]) == dict(zip(KEYS, (0.5, 0.5, 0.5, 0.0, 1.0)))


def test_numpy_stays_untouched():
    gt = track(1, 0, [box_mask(0, 0, 4, 4)])
    evaluate([make_video(1, 1, [gt], [gt], num_frames=1)])
    import mmdet.evaluation.functional.ytviseval as ytviseval
    assert ytviseval.np is np
    assert not hasattr(np, 'float')


def test_evaluates_again_after_a_first_round():
    # mmdet's metric loses its frame bookkeeping in evaluate() and fails
    # on a second validation round; each round must only see its videos.
    gt = [box_mask(2, 3, 6, 7)] * 3
    partial = [box_mask(2, 3, 6, 7), box_mask(2, 3, 6, 7), None]
    metric = METRICS.build(dict(type='VISMetric'))
    metric.dataset_meta = dict(classes=CLASSES)
    rounds = []
    for pred in (gt, partial):
        video = make_video(1, 1, [track(1, 0, gt)], [track(1, 0, pred)], 3)
        metric.process({}, [video.to_dict()])
        rounds.append(metric.evaluate(1)['youtube_vis/segm_mAP'])
    assert rounds == [1.0, 0.4]


def test_no_predictions_score_zero():
    # mmdet's YTVIS.loadRes indexes the first result and crashes on none.
    gt = track(1, 0, [box_mask(0, 0, 4, 4)] * 2)
    assert evaluate([make_video(1, 1, [gt], [],
                                2)]) == dict.fromkeys(KEYS, 0.0)


def test_format_only_writes_json_and_submission_zip(tmp_path):
    a = [box_mask(0, 0, 4, 4), None, box_mask(1, 1, 4, 4)]
    b = [box_mask(4, 5, 8, 10)] * 3
    preds = [track(3, 1, a, 0.6), track(4, 0, b, 0.3)]
    prefix = tmp_path / 'out' / 'ytvis_valid'
    # format_only needs no ground truth at all
    video = make_video(12, 1, [], preds, 3)
    for frame in video:
        frame.set_metainfo(dict(instances=[]))
    assert evaluate([video], format_only=True,
                    outfile_prefix=str(prefix)) == {}

    with zipfile.ZipFile(f'{prefix}.submission_file.zip') as zf:
        assert zf.namelist() == ['results.json']
        zipped = json.loads(zf.read('results.json'))
    with open(f'{prefix}.json') as f:
        assert json.load(f) == zipped
    assert len(zipped) == 2
    by_score = sorted(zipped, key=lambda r: -r['score'])
    for result, pred in zip(by_score, preds):
        assert result['video_id'] == 12
        assert result['category_id'] == pred['label'] + 1
        assert result['score'] == pytest.approx(pred['score'])
        assert len(result['segmentations']) == 3
        for rle, mask in zip(result['segmentations'], pred['masks']):
            mask = EMPTY if mask is None else mask
            decoded = mask_util.decode(
                dict(size=rle['size'], counts=rle['counts'].encode()))
            np.testing.assert_array_equal(decoded.astype(bool), mask)
    assert sorted(p.name for p in prefix.parent.iterdir()) == [
        'ytvis_valid.json', 'ytvis_valid.submission_file.zip'
    ]


def test_failed_write_keeps_previous_results(tmp_path, monkeypatch):
    gt = track(1, 0, [box_mask(0, 0, 4, 4)])
    prefix = str(tmp_path / 'res')
    evaluate([make_video(1, 1, [gt], [gt], 1)], outfile_prefix=prefix)
    before = {
        suffix: open(prefix + suffix, 'rb').read()
        for suffix in ('.json', '.submission_file.zip')
    }

    def broken_write(self, *args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(zipfile.ZipFile, 'write', broken_write)
    other = track(1, 1, [box_mask(2, 2, 6, 6)])
    with pytest.raises(OSError, match='disk full'):
        evaluate([make_video(1, 1, [other], [other], 1)],
                 outfile_prefix=prefix)
    for suffix, content in before.items():
        assert open(prefix + suffix, 'rb').read() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'res.json', 'res.submission_file.zip'
    ]


def test_format_only_needs_outfile_prefix():
    with pytest.raises(ValueError, match='outfile_prefix'):
        VISMetric(format_only=True)


def test_missing_ground_truth_names_the_video():
    gt = track(1, 0, [box_mask(0, 0, 4, 4)])
    video = make_video(31, 1, [gt], [gt], 1)
    video[0].__delattr__('instances')
    metric = VISMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    with pytest.raises(ValueError, match=r'video31/00000\.jpg.*video 31'):
        metric.process({}, [video.to_dict()])


def test_split_without_annotations_is_an_error():
    pred = track(1, 0, [box_mask(0, 0, 4, 4)])
    videos = [make_video(vid, vid * 10, [], [pred], 1) for vid in (5, 6)]
    with pytest.raises(ValueError, match=r'\[5, 6\].*format_only=True'):
        evaluate(videos)


def with_rle_masks(video: TrackDataSample) -> TrackDataSample:
    """The video with every frame's masks kept as COCO RLE (``masks_rle``),
    as the clip-wise mode of ``inference_video`` streams them."""
    frames = []
    for frame in video.video_data_samples:
        frame = frame.clone()
        pred = frame.pred_track_instances
        pred.masks_rle = [
            mask_util.encode(np.asfortranarray(m.numpy().astype(np.uint8)))
            for m in pred.masks
        ]
        del pred.masks
        frames.append(frame)
    return TrackDataSample(video_data_samples=frames)


def test_rle_masks_give_mmdets_results_of_the_dense_masks():
    a = [box_mask(0, 0, 4, 4), None, box_mask(1, 1, 5, 5)]
    b = [box_mask(4, 5, 8, 10), box_mask(4, 4, 8, 9), None]
    video = make_video(
        3, 1, [track(1, 0, a)],
        [track(7, 0, a, 0.9), track(8, 1, b, 0.4)], 3)
    reference = YouTubeVISMetric(format_only=True)
    reference.process_video(video.video_data_samples)
    (expected, _), = reference.results
    assert ytvis_results(with_rle_masks(video)) == expected
    assert ytvis_results(video) == expected


def test_rle_and_dense_videos_evaluate_alike():
    a = [box_mask(0, 0, 4, 4), box_mask(1, 1, 5, 5)]
    half = [box_mask(0, 0, 4, 2), box_mask(1, 1, 5, 3)]  # IoU 0.5 with a
    videos = [
        make_video(1, 1, [track(1, 0, a)], [track(2, 0, half, 0.8)], 2),
        make_video(2, 3, [track(3, 1, a)], [track(2, 1, a, 0.6)], 2),
    ]
    dense = evaluate(videos)
    rle = evaluate([videos[0], with_rle_masks(videos[1])])
    assert rle == dense
    # class 0: IoU 0.5 counts at the threshold 0.5 only (1 of 10); class 1
    # is exact: mAP (0.1 + 1) / 2, mAP_50 1
    assert rle['youtube_vis/segm_mAP'] == pytest.approx(0.55)
    assert rle['youtube_vis/segm_mAP_50'] == pytest.approx(1.0)
