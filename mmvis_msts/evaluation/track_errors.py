"""Where a VIS model's AP goes: finding the objects, or naming them.

For every ground-truth track the prediction of highest spatio-temporal mask
IoU is taken, whatever its class. How often that IoU reaches 0.5 / 0.75
bounds what a perfect classifier could make of the masks; how often that
prediction also has the right class (its top-scoring class) shows what the
classification costs. YouTube-VIS result files hold one entry per (query,
class) pair, so the highest-scoring entry of a mask stands for its query.
"""
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np
import pycocotools.mask as mask_util


def _decode(segm: Optional[object], height: int, width: int) -> np.ndarray:
    """RLE (compressed or not) or polygons -> (H, W) bool; None -> empty."""
    if segm is None:
        return np.zeros((height, width), dtype=bool)
    if isinstance(segm, list):
        segm = mask_util.merge(mask_util.frPyObjects(segm, height, width))
    elif isinstance(segm['counts'], list):
        segm = mask_util.frPyObjects(segm, height, width)
    return mask_util.decode(segm).astype(bool)


def _gt_tracks(gt: dict) -> Dict[int, List[dict]]:
    """Per video: tracks with ``label`` and (T, H, W) ``masks``."""
    frames = defaultdict(list)
    for image in gt['images']:
        frames[image['video_id']].append(image)
    anns = defaultdict(dict)
    for ann in gt['annotations']:
        anns[(ann['video_id'], ann['instance_id'])][ann['image_id']] = ann
    tracks = defaultdict(list)
    for (video_id, _), by_image in sorted(anns.items()):
        images = sorted(frames[video_id], key=lambda i: i['frame_id'])
        height, width = images[0]['height'], images[0]['width']
        masks = np.stack([
            _decode(by_image[i['id']]['segmentation'], height, width)
            if i['id'] in by_image else np.zeros((height, width), bool)
            for i in images
        ])
        label = next(iter(by_image.values()))['category_id']
        tracks[video_id].append(dict(label=label, masks=masks))
    return tracks


def track_errors(results: List[dict], gt: dict) -> dict:
    """Best class-agnostic match of every GT track.

    Args:
        results (list[dict]): YouTube-VIS results: ``video_id``, ``score``,
            ``category_id`` and per-frame ``segmentations`` (RLE or None).
        gt (dict): YouTube-VIS-style (COCO video) ground truth with
            ``images`` (``video_id``, ``frame_id``, size) and per-image
            ``annotations`` (``instance_id``, ``category_id``,
            ``segmentation``).

    Returns:
        dict: ``best_iou`` (N,) per GT track, ``gt_labels`` (N,),
        ``pred_labels`` (N,) category of the best prediction (0 where none),
        ``categories`` {id: name}.

    Raises:
        ValueError: If a result's frame count differs from its video's.
    """
    by_video = defaultdict(list)
    for result in results:
        by_video[result['video_id']].append(result)
    best_iou, gt_labels, pred_labels = [], [], []
    for video_id, tracks in _gt_tracks(gt).items():
        num_frames, height, width = tracks[0]['masks'].shape
        # identical masks come once per class: keep the top-scoring entry
        preds = {}
        for result in sorted(by_video[video_id], key=lambda r: -r['score']):
            if len(result['segmentations']) != num_frames:
                raise ValueError(
                    f'a result of video {video_id} has '
                    f'{len(result["segmentations"])} frames, the video '
                    f'{num_frames}')
            key = repr(result['segmentations'])
            if key not in preds:
                preds[key] = (result['category_id'],
                              np.stack([
                                  _decode(s, height, width)
                                  for s in result['segmentations']
                              ]))
        for track in tracks:
            ious = [((masks & track['masks']).sum() / max(
                (masks | track['masks']).sum(), 1), label)
                    for label, masks in preds.values()]
            iou, label = max(ious, key=lambda x: x[0], default=(0.0, 0))
            best_iou.append(float(iou))
            gt_labels.append(track['label'])
            pred_labels.append(label)
    return dict(
        best_iou=np.array(best_iou),
        gt_labels=np.array(gt_labels, dtype=int),
        pred_labels=np.array(pred_labels, dtype=int),
        categories={c['id']: c['name']
                    for c in gt['categories']})


def summarize_track_errors(errors: dict, iou_thr: float = 0.5) -> str:
    """Markdown summary of :func:`track_errors`.

    Recall of the masks at IoU 0.5 and 0.75 whatever the class, the class
    accuracy of the tracks found at ``iou_thr``, and their confusion matrix.
    """
    iou = errors['best_iou']
    found = iou >= iou_thr
    correct = errors['pred_labels'] == errors['gt_labels']
    lines = [
        f'GT tracks: {len(iou)}',
        '',
        '| best mask IoU, any class | tracks |',
        '|---|---:|',
    ]
    lines += [f'| >= {t} | {(iou >= t).mean():.2f} |' for t in (0.5, 0.75)]
    accuracy = correct[found].mean() if found.any() else float('nan')
    lines += [
        '',
        f'Class accuracy of the tracks found at IoU >= {iou_thr}: '
        f'{accuracy:.2f} ({int((found & correct).sum())} of '
        f'{int(found.sum())})',
        '',
    ]
    names = errors['categories']
    ids = sorted(names)
    lines.append('| GT \\ predicted | ' + ' | '.join(names[i]
                                                     for i in ids) + ' |')
    lines.append('|---|' + '---:|' * len(ids))
    for gt_id in ids:
        row = [
            int((found & (errors['gt_labels'] == gt_id) &
                 (errors['pred_labels'] == pred_id)).sum()) for pred_id in ids
        ]
        lines.append(f'| {names[gt_id]} | ' + ' | '.join(map(str, row)) + ' |')
    return '\n'.join(lines)
