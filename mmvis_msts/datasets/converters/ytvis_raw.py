"""Raw YouTube-VIS-format annotations -> mmdet's COCO-video json."""
from typing import Dict, List

from ..validation import check_annotations, report_problems


def convert_raw_vis(raw: Dict, source: str = '<raw json>') -> Dict:
    """Convert a raw YouTube-VIS-style annotation dict (YouTube-VIS 2019 /
    2021 / 2022, OVIS) into the json :class:`YouTubeVISDataset` loads.

    Raw format: ``videos`` ``{id, file_names, width, height}``,
    ``annotations`` (one per object track) ``{id, video_id, category_id,
    segmentations, bboxes, areas, iscrowd}`` with one (possibly ``None``)
    entry per frame, and ``categories``. The output has one ``images`` entry
    per frame (``{id, video_id, frame_id, file_name, height, width}``) and
    one ``annotations`` entry per visible object per frame (``{id,
    video_id, image_id, category_id, instance_id, bbox (xywh),
    segmentation, area, iscrowd}``), ``instance_id`` being unique over the
    whole file. Splits without annotations (valid/test) give videos and
    images only. Video names are the folder of the first frame.

    The input is checked first (``check_annotations(fmt='raw')``): every
    fatal problem (e.g. a track whose ``segmentations`` list is not one
    entry per frame, an unknown video or category, an invalid RLE) is
    raised together; warnings are logged.

    Args:
        raw (dict): The loaded raw json.
        source (str): File name used in error messages.

    Returns:
        dict: ``categories``, ``videos``, ``images``, ``annotations``.

    Raises:
        VISDatasetError: If the input has a fatal problem.
    """
    report_problems(
        check_annotations(raw, source, test_mode=True, fmt='raw'),
        source,
        droppable=False)
    tracks_per_video: Dict[int, List[dict]] = {}
    for track in raw.get('annotations') or []:
        tracks_per_video.setdefault(track['video_id'], []).append(track)

    out = dict(
        categories=[dict(c) for c in raw['categories']],
        videos=[],
        images=[],
        annotations=[])
    next_instance_id = 1
    for video in raw['videos']:
        file_names = video['file_names']
        out['videos'].append(
            dict(
                id=video['id'],
                name=file_names[0].replace('\\', '/').split('/')[0],
                width=video['width'],
                height=video['height']))
        first_image_id = len(out['images']) + 1
        for frame_id, file_name in enumerate(file_names):
            out['images'].append(
                dict(
                    id=first_image_id + frame_id,
                    video_id=video['id'],
                    frame_id=frame_id,
                    file_name=file_name,
                    height=video['height'],
                    width=video['width']))
        for track in tracks_per_video.get(video['id'], []):
            instance_id = next_instance_id
            next_instance_id += 1
            for frame_id, segmentation in enumerate(track['segmentations']):
                if segmentation is None:  # checked: bbox is None too
                    continue
                out['annotations'].append(
                    dict(
                        id=len(out['annotations']) + 1,
                        video_id=video['id'],
                        image_id=first_image_id + frame_id,
                        category_id=track['category_id'],
                        instance_id=instance_id,
                        bbox=track['bboxes'][frame_id],
                        segmentation=segmentation,
                        area=track['areas'][frame_id],
                        iscrowd=track.get('iscrowd', 0)))
    return out
