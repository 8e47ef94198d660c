"""Writing the synthetic VIS data set to disk in YouTube-VIS format.

Layout under the output root::

    <out>/train/JPEGImages/<video_name>/<frame:05d>.jpg
    <out>/val/JPEGImages/<video_name>/<frame:05d>.jpg
    <out>/annotations/train.json
    <out>/annotations/val.json
    <out>/synthetic_vis_meta.json    (settings; written last, marks success)

The json files follow the converted YouTube-VIS format that mmdet's
``YouTubeVISDataset`` loads: ``categories``, ``videos`` ``{id, name, width,
height}``, ``images`` ``{id, video_id, frame_id, file_name, height, width}``
and ``annotations`` ``{id, video_id, image_id, category_id, instance_id,
bbox (xywh), segmentation (COCO RLE, counts as str), area, iscrowd}``. All
ids start at 1 (mmdet treats an ``instance_id`` of 0 as missing) and
instance ids are unique over the split. Both splits carry ground truth.
"""
import json
import math
import multiprocessing
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from ..converters.io import encode_rle
from .scene import RenderedVideo, render_scene, sample_scene
from .settings import GENERATOR_VERSION, SyntheticVISSettings

#: Seed-stream code of each split: video i of split s uses the seed
#: (settings.seed, SPLITS[s], i).
SPLITS: Dict[str, int] = dict(train=0, val=1)

META_FILE = 'synthetic_vis_meta.json'
#: Default name of the contact sheet written by :func:`write_preview`.
PREVIEW_FILE = 'preview.png'


def make_video(settings: SyntheticVISSettings, split: str,
               index: int) -> RenderedVideo:
    """Draw and render video ``index`` of a split, reproducibly.

    Args:
        settings (SyntheticVISSettings): Generator settings.
        split (str): 'train' or 'val'.
        index (int): Video index within the split.

    Returns:
        RenderedVideo: Frames and masks of the video.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {list(SPLITS)}, got {split!r}')
    rng = np.random.default_rng([settings.seed, SPLITS[split], index])
    scene = sample_scene(settings, rng)
    return render_scene(scene, rng)


def video_name(split: str, index: int) -> str:
    """Folder name of a video, e.g. ``'train_00042'``."""
    return f'{split}_{index:05d}'


def video_annotations(video: RenderedVideo,
                      min_visible_area: int = 1) -> List[dict]:
    """Per-frame annotations of the visible part of every instance.

    An instance gets an annotation in a frame when at least
    ``min_visible_area`` of its pixels are visible there; fully hidden or
    absent instances get none.

    Args:
        video (RenderedVideo): A rendered video.
        min_visible_area (int): Fewest visible pixels to annotate.
            Defaults to 1.

    Returns:
        list[dict]: In frame, then instance order, dicts with ``frame``,
        ``instance`` (index k), ``label``, ``segmentation`` (COCO RLE with
        str counts), ``bbox`` (xywh floats) and ``area`` (pixels).
    """
    areas = video.visible.sum(axis=(2, 3))  # (T, K)
    annotations = []
    for t, k in zip(*np.nonzero(areas >= min_visible_area)):
        rle = encode_rle(video.visible[t, k])
        annotations.append(
            dict(
                frame=int(t),
                instance=int(k),
                label=int(video.labels[k]),
                segmentation=rle,
                bbox=[float(v) for v in mask_utils.toBbox(rle)],
                area=int(areas[t, k])))
    return annotations


def _write_video(job: Tuple[SyntheticVISSettings, str, int, str]) -> dict:
    """Render one video, write its frames and return its annotations.

    Runs in worker processes, so it only returns plain data: ids are given
    by the caller, in video order, to stay independent of the workers.
    """
    settings, split, index, image_root = job
    video = make_video(settings, split, index)
    name = video_name(split, index)
    os.makedirs(osp.join(image_root, name), exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, settings.jpeg_quality]
    file_names = []
    for t, frame in enumerate(video.frames):
        file_name = f'{name}/{t:05d}.jpg'
        if not cv2.imwrite(osp.join(image_root, file_name), frame, params):
            raise OSError(f'could not write {osp.join(image_root, file_name)}')
        file_names.append(file_name)

    annotations = video_annotations(video, settings.min_visible_area)
    _, height, width, _ = video.frames.shape
    return dict(
        name=name,
        height=int(height),
        width=int(width),
        file_names=file_names,
        annotations=annotations)


def _pool_context() -> multiprocessing.context.BaseContext:
    """Fork where possible: forked workers start at once, while spawned
    ones re-import torch and mmdet (seconds each). The workers run only
    numpy, OpenCV and pycocotools code, which is safe to fork (they leave
    OpenCV's thread settings alone: ``cv2.setNumThreads`` in a forked child
    can deadlock once the parent has used OpenCV's thread pool)."""
    if 'fork' in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context('fork')
    return multiprocessing.get_context('spawn')


def generate_split(settings: SyntheticVISSettings,
                   split: str,
                   out_dir: str,
                   workers: int = 1,
                   progress: bool = True) -> dict:
    """Generate the frames of a split and return its annotation dict.

    Args:
        settings (SyntheticVISSettings): Generator settings.
        split (str): 'train' or 'val'.
        out_dir (str): Output root; frames go to
            ``<out_dir>/<split>/JPEGImages``.
        workers (int): Number of worker processes (1 renders in this
            process). The output does not depend on it. Defaults to 1.
        progress (bool): Whether to show a progress bar. Defaults to True.

    Returns:
        dict: The YouTube-VIS-format annotation dict of the split.
    """
    if workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}')
    num_videos = settings.num_train if split == 'train' else settings.num_val
    image_root = osp.join(out_dir, split, 'JPEGImages')
    os.makedirs(image_root, exist_ok=True)
    jobs = [(settings, split, i, image_root) for i in range(num_videos)]
    bar = None
    if progress and num_videos:
        from mmengine.utils import ProgressBar
        print(f'Generating {num_videos} {split} videos:')
        bar = ProgressBar(num_videos)
    records = []
    if workers == 1:
        for job in jobs:
            records.append(_write_video(job))
            if bar is not None:
                bar.update()
    else:
        with _pool_context().Pool(workers) as pool:
            # imap keeps the video order, so ids do not depend on timing
            chunk = max(1, min(16, math.ceil(num_videos / (4 * workers))))
            for record in pool.imap(_write_video, jobs, chunksize=chunk):
                records.append(record)
                if bar is not None:
                    bar.update()
    if bar is not None:
        print()
    return _assemble(settings, records)


def _assemble(settings: SyntheticVISSettings, records: List[dict]) -> dict:
    """Number videos, frames, instances and annotations from 1, in order."""
    videos, images, annotations = [], [], []
    next_instance_id = 1
    for video_id, record in enumerate(records, start=1):
        videos.append(
            dict(
                id=video_id,
                name=record['name'],
                width=record['width'],
                height=record['height']))
        first_image_id = len(images) + 1
        for frame_id, file_name in enumerate(record['file_names']):
            images.append(
                dict(
                    id=first_image_id + frame_id,
                    video_id=video_id,
                    frame_id=frame_id,
                    file_name=file_name,
                    height=record['height'],
                    width=record['width']))
        instance_ids = {}
        for ann in record['annotations']:
            if ann['instance'] not in instance_ids:
                instance_ids[ann['instance']] = next_instance_id
                next_instance_id += 1
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    video_id=video_id,
                    image_id=first_image_id + ann['frame'],
                    category_id=ann['label'] + 1,
                    instance_id=instance_ids[ann['instance']],
                    bbox=ann['bbox'],
                    segmentation=ann['segmentation'],
                    area=ann['area'],
                    iscrowd=0))
    categories = [
        dict(id=i + 1, name=name) for i, name in enumerate(settings.classes)
    ]
    return dict(
        categories=categories,
        videos=videos,
        images=images,
        annotations=annotations)


def _expected_meta(settings: SyntheticVISSettings) -> dict:
    return dict(
        generator_version=GENERATOR_VERSION, settings=settings.to_dict())


def _read_meta(meta_path: str) -> dict:
    """Read a meta file, giving the settings it predates their defaults.

    Settings are added off, without a bump of ``GENERATOR_VERSION``: their
    defaults reproduce the data written before they existed, so that data
    still matches the settings that now spell them out.
    """
    with open(meta_path) as f:
        meta = json.load(f)
    settings = dict(SyntheticVISSettings().to_dict(),
                    **meta.get('settings', {}))
    return dict(meta, settings=settings)


def _output_paths(out_dir: str) -> List[str]:
    return [
        osp.join(out_dir, name)
        for name in ('train', 'val', 'annotations', META_FILE, PREVIEW_FILE)
    ]


def is_complete(settings: SyntheticVISSettings, out_dir: str) -> bool:
    """Whether ``out_dir`` holds a finished data set made with ``settings``.

    Args:
        settings (SyntheticVISSettings): Generator settings.
        out_dir (str): Output root.

    Returns:
        bool: True if the meta file matches (settings that it predates
        count as their defaults) and both json files exist.

    Raises:
        FileExistsError: If ``out_dir`` holds generator output made with
            other settings, or an unfinished one (no meta file).
    """
    meta_path = osp.join(out_dir, META_FILE)
    if osp.isfile(meta_path):
        meta = _read_meta(meta_path)
        expected = _expected_meta(settings)
        if meta != expected:
            old = dict(
                meta['settings'],
                generator_version=meta.get('generator_version'))
            new = dict(
                expected['settings'], generator_version=GENERATOR_VERSION)
            diff = {
                k: (old.get(k), new.get(k))
                for k in sorted(set(old) | set(new))
                if old.get(k) != new.get(k)
            }
            raise FileExistsError(
                f'{out_dir} holds a synthetic VIS data set made with other '
                f'settings (setting: (on disk, requested)): {diff}. Use '
                'force=True (--force) to regenerate it or pick another '
                'output folder.')
        missing = [
            p for p in (osp.join(out_dir, 'annotations', f'{s}.json')
                        for s in SPLITS) if not osp.isfile(p)
        ]
        if missing:
            raise FileExistsError(
                f'{out_dir} has {META_FILE} but lacks {missing}; use '
                'force=True (--force) to regenerate it.')
        return True
    present = [p for p in _output_paths(out_dir) if osp.exists(p)]
    if present:
        raise FileExistsError(
            f'{out_dir} holds {present} but no {META_FILE}: an unfinished '
            'or foreign data set. Use force=True (--force) to regenerate '
            'it or pick another output folder.')
    return False


def generate_dataset(settings: SyntheticVISSettings,
                     out_dir: str,
                     workers: int = 1,
                     force: bool = False,
                     progress: bool = True) -> bool:
    """Generate the train and val splits, unless already there.

    Args:
        settings (SyntheticVISSettings): Generator settings.
        out_dir (str): Output root (e.g. ``data/synthetic_vis``).
        workers (int): Number of worker processes. Defaults to 1.
        force (bool): Delete this generator's output under ``out_dir`` and
            regenerate, whatever is there. Defaults to False.
        progress (bool): Whether to show progress bars. Defaults to True.

    Returns:
        bool: True if the data set was generated, False if ``out_dir``
        already held it with the same settings.

    Raises:
        FileExistsError: If ``out_dir`` holds other or unfinished output and
            ``force`` is False.
    """
    if force:
        for path in _output_paths(out_dir):
            if osp.isdir(path):
                shutil.rmtree(path)
            elif osp.exists(path):
                os.remove(path)
    elif is_complete(settings, out_dir):
        return False
    ann_dir = osp.join(out_dir, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    for split in SPLITS:
        data = generate_split(settings, split, out_dir, workers, progress)
        with open(osp.join(ann_dir, f'{split}.json'), 'w') as f:
            json.dump(data, f, separators=(',', ':'))
    with open(osp.join(out_dir, META_FILE), 'w') as f:
        json.dump(_expected_meta(settings), f, indent=2)
    return True


def _instance_colour(instance_id: int) -> Tuple[int, int, int]:
    # golden-ratio hue steps give well separated colours for nearby ids
    hue = int((instance_id * 0.618034 % 1.0) * 180)
    hsv = np.array([[[hue, 220, 255]]], np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def write_preview(out_dir: str,
                  path: str,
                  split: str = 'val',
                  num_videos: int = 4,
                  max_frames: int = 8,
                  zoom: int = 3) -> Optional[str]:
    """Write a contact sheet of a few videos read back from disk.

    Each video gives two rows: its frames, then the same frames with the
    annotated masks filled in instance colours and labelled
    ``<instance_id>:<class>``. Reading the written json and JPEGs checks the
    output as a user of the data set sees it.

    Args:
        out_dir (str): Data set root.
        path (str): PNG file to write.
        split (str): Split to show. Defaults to 'val'.
        num_videos (int): Number of videos (the first ones). Defaults to 4.
        max_frames (int): Frames per video, evenly spaced. Defaults to 8.
        zoom (int): Upscaling of the frames. Defaults to 3.

    Returns:
        str | None: ``path``, or None if the split has no videos.
    """
    ann_file = osp.join(out_dir, 'annotations', f'{split}.json')
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'no annotation file {ann_file}: generate '
                                'the data set first')
    with open(ann_file) as f:
        data = json.load(f)
    videos = data['videos'][:num_videos]
    if not videos:
        return None
    names = {c['id']: c['name'] for c in data['categories']}
    frames_of = {}
    for img in data['images']:
        frames_of.setdefault(img['video_id'], []).append(img)
    anns_of = {}
    for ann in data['annotations']:
        anns_of.setdefault(ann['image_id'], []).append(ann)

    cell_h = zoom * max(v['height'] for v in videos)
    cell_w = zoom * max(v['width'] for v in videos)
    gap = 4
    rows = []
    for video in videos:
        imgs = frames_of[video['id']]
        picks = np.unique(
            np.linspace(0,
                        len(imgs) - 1, min(max_frames,
                                           len(imgs))).round().astype(int))
        raw_row = np.full((cell_h, (cell_w + gap) * max_frames, 3), 255,
                          np.uint8)
        ann_row = raw_row.copy()
        for col, i in enumerate(picks):
            img = imgs[i]
            frame = cv2.imread(
                osp.join(out_dir, split, 'JPEGImages', img['file_name']))
            frame = cv2.resize(
                frame, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
            overlay = frame.copy()
            for ann in anns_of.get(img['id'], []):
                mask = mask_utils.decode(ann['segmentation']).astype(bool)
                mask = np.kron(mask, np.ones((zoom, zoom), bool))
                colour = _instance_colour(ann['instance_id'])
                overlay[mask] = (0.4 * overlay[mask] +
                                 0.6 * np.array(colour)).astype(np.uint8)
                contours, _ = cv2.findContours(
                    mask.astype(np.uint8), cv2.RETR_LIST,
                    cv2.CHAIN_APPROX_NONE)
                cv2.drawContours(overlay, contours, -1, (255, 255, 255), 1)
                x, y, _, _ = ann['bbox']
                org = (int(x * zoom), max(int(y * zoom) - 3, 9))
                text = f"{ann['instance_id']}:{names[ann['category_id']]}"
                # white text on a black outline stays readable on any colour
                for thickness, ink in ((3, (0, 0, 0)), (1, (255, 255, 255))):
                    cv2.putText(overlay, text, org, cv2.FONT_HERSHEY_SIMPLEX,
                                0.4, ink, thickness, cv2.LINE_AA)
            x0 = col * (cell_w + gap)
            h, w = frame.shape[:2]
            raw_row[:h, x0:x0 + w] = frame
            ann_row[:h, x0:x0 + w] = overlay
        rows += [
            raw_row,
            np.full_like(raw_row[:gap], 255), ann_row,
            np.full_like(raw_row[:gap * 4], 255)
        ]
    sheet = np.concatenate(rows)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, sheet):
        raise OSError(f'could not write {path}')
    return path
