"""Tiny on-disk VIS fixtures, written into tmp_path at test time."""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Sequence, Tuple

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils


def box_mask(height: int, width: int, x: int, y: int, w: int,
             h: int) -> np.ndarray:
    """(H, W) uint8 mask of the rectangle [x, x + w) x [y, y + h)."""
    mask = np.zeros((height, width), np.uint8)
    mask[y:y + h, x:x + w] = 1
    return mask


def encode(mask: np.ndarray) -> Dict:
    """COCO RLE of a binary mask, counts as str (json-serialisable)."""
    rle = mask_utils.encode(np.asfortranarray(mask))
    return dict(size=list(rle['size']), counts=rle['counts'].decode())


def write_vis_dataset(root: str,
                      videos: Sequence[Tuple[str, int]],
                      classes: Sequence[str],
                      split: str = 'train',
                      size: Tuple[int, int] = (48, 64),
                      annotate: bool = True) -> str:
    """Write a COCO-video json and its JPEG frames.

    Every video has two objects: a bright rectangle (category 1) moving
    right by 2 px per frame and a dark one (category 2), each present in
    every frame. Frames go to ``<root>/<split>/JPEGImages/<video>/``.

    Args:
        root (str): Dataset root.
        videos (Sequence[tuple[str, int]]): (name, number of frames).
        classes (Sequence[str]): Category names (ids 1..K).
        split (str): Split name, used for the folder and json name.
        size (tuple[int, int]): (H, W) of every frame.
        annotate (bool): Write annotations (False: a valid-style json).

    Returns:
        str: The json path (``<root>/annotations/<split>.json``).
    """
    height, width = size
    ann = dict(
        categories=[dict(id=i + 1, name=n) for i, n in enumerate(classes)],
        videos=[],
        images=[],
        annotations=[])
    for video_id, (name, num_frames) in enumerate(videos, start=1):
        ann['videos'].append(
            dict(id=video_id, name=name, width=width, height=height))
        for frame_id in range(num_frames):
            image_id = len(ann['images']) + 1
            file_name = f'{name}/{frame_id:05d}.jpg'
            img = np.full((height, width, 3), 40, np.uint8)
            objects = [(1, (4 + 2 * frame_id, 6, 12, 10), 230),
                       (2, (30, 20 + frame_id % 3, 10, 14), 120)]
            for instance, (x, y, w, h), value in objects:
                img[y:y + h, x:x + w] = value
                if not annotate:
                    continue
                ann['annotations'].append(
                    dict(
                        id=len(ann['annotations']) + 1,
                        video_id=video_id,
                        image_id=image_id,
                        category_id=instance,
                        instance_id=video_id * 10 + instance,
                        bbox=[x, y, w, h],
                        area=w * h,
                        iscrowd=0,
                        segmentation=encode(
                            box_mask(height, width, x, y, w, h))))
            path = osp.join(root, split, 'JPEGImages', file_name)
            _imwrite(path, img)
            ann['images'].append(
                dict(
                    id=image_id,
                    video_id=video_id,
                    frame_id=frame_id,
                    file_name=file_name,
                    height=height,
                    width=width))
    ann_path = osp.join(root, 'annotations', f'{split}.json')
    _dump(ann, ann_path)
    return ann_path


def write_coco_dataset(
    root: str, classes: Sequence[str], size: Tuple[int,
                                                   int] = (60, 80)) -> str:
    """Write a two-image COCO json (categories ``classes``) and its JPEGs.

    Image 1 has a bright rectangle of category 1 and a polygon of category
    2; image 2 has one rectangle of category 2.

    Returns:
        str: The json path (``<root>/annotations/coco.json``).
    """
    height, width = size
    ann = dict(
        categories=[dict(id=i + 1, name=n) for i, n in enumerate(classes)],
        images=[],
        annotations=[])
    layouts: List[List[Tuple[int, Tuple[int, int, int, int]]]] = [
        [(1, (10, 12, 20, 16)), (2, (45, 30, 18, 20))],
        [(2, (20, 20, 30, 24))],
    ]
    for image_id, objects in enumerate(layouts, start=1):
        img = np.full((height, width, 3), 30, np.uint8)
        for category, (x, y, w, h) in objects:
            img[y:y + h, x:x + w] = 220
            polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
            ann['annotations'].append(
                dict(
                    id=len(ann['annotations']) + 1,
                    image_id=image_id,
                    category_id=category,
                    bbox=[x, y, w, h],
                    area=w * h,
                    iscrowd=0,
                    segmentation=[polygon]))
        file_name = f'{image_id:012d}.jpg'
        _imwrite(osp.join(root, 'train2017', file_name), img)
        ann['images'].append(
            dict(id=image_id, file_name=file_name, height=height, width=width))
    ann_path = osp.join(root, 'annotations', 'coco.json')
    _dump(ann, ann_path)
    return ann_path


def _imwrite(path: str, img: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, img), path


def _dump(obj, path: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f)


@pytest.fixture
def make_vis_dataset() -> Callable[..., str]:
    """The :func:`write_vis_dataset` writer."""
    return write_vis_dataset


@pytest.fixture
def make_coco_dataset() -> Callable[..., str]:
    """The :func:`write_coco_dataset` writer."""
    return write_coco_dataset
