"""Per-frame instance-id mask PNGs -> YouTube-VIS (COCO-video) json.

Input layout::

    <mask_root>/<video>/<frame>.png     instance ids, 0 = background
    <image_root>/<video>/<frame>.jpg    the frames (.jpg, .jpeg or .png)
    <class map>                         JSON or CSV, see load_class_map

A mask PNG is either indexed (palette, mode 'P', DAVIS style) or grey
(mode 'L' / '1'), where the pixel value is the instance id, or 16-bit grey
(mode 'I;16' / 'I') for more than 255 ids. ``ignore_value`` pixels (255 by
default, None to disable) belong to no instance: the YouTube-VIS format has
no ignore regions, so they simply count as unlabelled.
"""
import csv
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from .io import encode_rle, load_json

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
_ID_MODES = ('P', 'L', '1', 'I;16', 'I;16L', 'I;16B', 'I')
_DEFAULT_KEY = '*'

ClassMap = Dict[str, Dict[int, str]]


def load_class_map(
        path: str,
        categories: Optional[Sequence[str]] = None
) -> Tuple[List[str], ClassMap]:
    """Read the class of every (video, instance id).

    JSON::

        {"categories": ["cat", "dog"],
         "videos": {"video_a": {"1": "cat", "2": "dog"},
                    "*": {"1": "cat"}}}

    CSV (header required; the categories come from ``categories``)::

        video,instance_id,category
        video_a,1,cat
        *,1,cat

    Video ``*`` gives defaults for ids that a video does not list. The
    category order fixes the category ids (1..K) and hence the labels, so it
    must be the same for every split of a dataset: it is never inferred.

    Args:
        path (str): The .json or .csv file.
        categories (Sequence[str], optional): Category names; overrides the
            JSON's list, required for CSV.

    Returns:
        tuple[list[str], dict]: The category names and ``{video: {id:
        class}}`` (with ``'*'`` for the defaults).
    """
    class_map: ClassMap = {}
    if path.endswith('.json'):
        content = load_json(path)
        if not isinstance(content, dict) or 'videos' not in content:
            raise KeyError(f'class map {path} needs a "videos" object')
        if categories is None:
            categories = content.get('categories')
        for video, ids in content['videos'].items():
            class_map[video] = {}
            for key, name in ids.items():
                try:
                    class_map[video][int(key)] = name
                except ValueError:
                    raise ValueError(
                        f'class map {path}: video {video!r} has instance '
                        f'id {key!r}, which is not an integer') from None
    elif path.endswith('.csv'):
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            columns = {'video', 'instance_id', 'category'}
            if not columns <= set(reader.fieldnames or ()):
                raise KeyError(f'class map {path} needs the columns '
                               f'{sorted(columns)}, got {reader.fieldnames}')
            for line, row in enumerate(reader, start=2):
                try:
                    instance_id = int(row['instance_id'])
                except ValueError:
                    raise ValueError(
                        f'class map {path} line {line}: instance_id '
                        f'{row["instance_id"]!r} is not an integer') from None
                class_map.setdefault(row['video'],
                                     {})[instance_id] = row['category']
    else:
        raise ValueError(f'class map {path} must be a .json or .csv file')
    if not categories:
        raise ValueError(f'class map {path} gives no category list: add '
                         '"categories" to the JSON or pass categories')
    categories = list(categories)
    if len(set(categories)) != len(categories):
        raise ValueError(f'categories of {path} repeat a name: {categories}')
    for video, ids in class_map.items():
        for instance_id, name in ids.items():
            if name not in categories:
                raise ValueError(
                    f'class map {path}: video {video!r} instance '
                    f'{instance_id} has class {name!r}, which is not in the '
                    f'categories {categories}')
    return categories, class_map


def read_id_mask(path: str) -> np.ndarray:
    """Read an instance-id PNG.

    Args:
        path (str): Indexed, 8-bit grey or 16-bit grey PNG.

    Returns:
        np.ndarray: (H, W) int64 instance ids.
    """
    with Image.open(path) as image:
        if image.mode not in _ID_MODES:
            raise ValueError(
                f'{path} is a {image.mode} image; save instance ids as an '
                'indexed (palette) or 8/16-bit grey PNG')
        return np.asarray(image).astype(np.int64)


def find_image(image_root: str, video: str, stem: str, mask_path: str) -> str:
    """Return the frame image paired with a mask.

    Args:
        image_root (str): Root of the frame folders.
        video (str): Video folder name.
        stem (str): Frame name without extension.
        mask_path (str): The mask, for the error message.

    Returns:
        str: Path of ``<image_root>/<video>/<stem><ext>``.
    """
    candidates = [
        osp.join(image_root, video, stem + ext) for ext in IMAGE_EXTENSIONS
    ]
    for candidate in candidates:
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(f'mask {mask_path} has no frame image: none of '
                            f'{candidates} exists')


def encode_instances(ids: np.ndarray, ignore_value: Optional[int]) -> Dict:
    """Encode every instance of one id map.

    Args:
        ids (np.ndarray): (H, W) instance ids.
        ignore_value (int, optional): Id that marks unlabelled pixels.

    Returns:
        dict[int, dict]: ``{instance id: {segmentation (RLE, counts str),
        area, bbox (xywh)}}`` for every id present except 0 and
        ``ignore_value``.
    """
    out = {}
    for instance_id in np.unique(ids):
        if instance_id == 0 or instance_id == ignore_value:
            continue
        rle = encode_rle(ids == instance_id)
        out[int(instance_id)] = dict(
            segmentation=rle,
            area=float(mask_utils.area(rle)),
            bbox=[float(v) for v in mask_utils.toBbox(rle)])
    return out


def convert_mask_videos(mask_root: str,
                        image_root: str,
                        class_map_path: str,
                        categories: Optional[Sequence[str]] = None,
                        ignore_value: Optional[int] = 255) -> Dict:
    """Build a YouTube-VIS json from instance-id mask videos.

    Every mask frame is paired with the image of the same name; only frames
    with a mask become images of the json (like YouTube-VIS, whose json
    lists the annotated frames only), in name order, with ``frame_id`` their
    index. ``file_name`` is ``<video>/<image file>``, relative to
    ``image_root`` (the dataset's ``data_prefix.img_path``). Instance ids are
    renumbered to be unique over the whole file.

    Args:
        mask_root (str): Folder of per-video mask folders.
        image_root (str): Folder of per-video frame folders.
        class_map_path (str): Class map (see :func:`load_class_map`).
        categories (Sequence[str], optional): Category names, see
            :func:`load_class_map`.
        ignore_value (int, optional): Unlabelled id. Defaults to 255.

    Returns:
        dict: ``categories`` (ids 1..K), ``videos``, ``images``,
        ``annotations``.
    """
    categories, class_map = load_class_map(class_map_path, categories)
    category_ids = {name: i + 1 for i, name in enumerate(categories)}
    if not osp.isdir(mask_root):
        raise FileNotFoundError(f'mask folder {mask_root} does not exist')
    videos = sorted(
        name for name in os.listdir(mask_root)
        if osp.isdir(osp.join(mask_root, name)))
    if not videos:
        raise FileNotFoundError(f'mask folder {mask_root} has no video '
                                'folders')
    out = dict(
        categories=[
            dict(id=category_ids[name], name=name) for name in categories
        ],
        videos=[],
        images=[],
        annotations=[])
    global_ids: Dict[Tuple[str, int], int] = {}
    for video_id, video in enumerate(videos, start=1):
        video_dir = osp.join(mask_root, video)
        masks = sorted(
            name for name in os.listdir(video_dir) if name.endswith('.png'))
        if not masks:
            raise FileNotFoundError(f'video {video!r}: {video_dir} has no '
                                    '.png masks')
        video_size = None
        for frame_id, mask_file in enumerate(masks):
            mask_path = osp.join(video_dir, mask_file)
            image_path = find_image(image_root, video,
                                    osp.splitext(mask_file)[0], mask_path)
            with Image.open(image_path) as image:
                width, height = image.size
            ids = read_id_mask(mask_path)
            if ids.shape != (height, width):
                raise ValueError(
                    f'mask {mask_path} is {ids.shape[1]}x{ids.shape[0]} '
                    f'(WxH) but its image {image_path} is {width}x{height}')
            if video_size is None:
                video_size = (width, height)
                out['videos'].append(
                    dict(id=video_id, name=video, width=width, height=height))
            elif video_size != (width, height):
                raise ValueError(
                    f'video {video!r}: {image_path} is {width}x{height} but '
                    f'its first frame is {video_size[0]}x{video_size[1]}')
            image_id = len(out['images']) + 1
            out['images'].append(
                dict(
                    id=image_id,
                    video_id=video_id,
                    frame_id=frame_id,
                    file_name=f'{video}/{osp.basename(image_path)}',
                    height=height,
                    width=width))
            for local_id, encoded in encode_instances(ids,
                                                      ignore_value).items():
                name = class_map.get(video, {}).get(
                    local_id,
                    class_map.get(_DEFAULT_KEY, {}).get(local_id))
                if name is None:
                    raise KeyError(
                        f'video {video!r}: instance id {local_id} in '
                        f'{mask_path} has no class in {class_map_path}')
                instance_id = global_ids.setdefault((video, local_id),
                                                    len(global_ids) + 1)
                out['annotations'].append(
                    dict(
                        id=len(out['annotations']) + 1,
                        video_id=video_id,
                        image_id=image_id,
                        category_id=category_ids[name],
                        instance_id=instance_id,
                        iscrowd=0,
                        **encoded))
    return out


def convert_frame_videos(image_root: str, categories: Sequence[str]) -> Dict:
    """Build an annotation-free json of every frame, to run a model on new
    videos (``format_only`` testing).

    Args:
        image_root (str): Folder of per-video frame folders; every
            .jpg/.jpeg/.png file is a frame, in name order.
        categories (Sequence[str]): Category names, in the training order.

    Returns:
        dict: ``categories``, ``videos``, ``images`` and empty
        ``annotations``.
    """
    if not categories:
        raise ValueError('categories must not be empty')
    if not osp.isdir(image_root):
        raise FileNotFoundError(f'image folder {image_root} does not exist')
    videos = sorted(
        name for name in os.listdir(image_root)
        if osp.isdir(osp.join(image_root, name)))
    out = dict(
        categories=[
            dict(id=i + 1, name=name) for i, name in enumerate(categories)
        ],
        videos=[],
        images=[],
        annotations=[])
    for video_id, video in enumerate(videos, start=1):
        video_dir = osp.join(image_root, video)
        frames = sorted(
            name for name in os.listdir(video_dir)
            if name.lower().endswith(IMAGE_EXTENSIONS))
        if not frames:
            raise FileNotFoundError(f'video {video!r}: {video_dir} has no '
                                    'frames')
        sizes = []
        for frame_id, frame in enumerate(frames):
            with Image.open(osp.join(video_dir, frame)) as image:
                width, height = image.size
            sizes.append((width, height))
            if sizes[0] != (width, height):
                raise ValueError(
                    f'video {video!r}: {osp.join(video_dir, frame)} is '
                    f'{width}x{height} but its first frame is '
                    f'{sizes[0][0]}x{sizes[0][1]}')
            out['images'].append(
                dict(
                    id=len(out['images']) + 1,
                    video_id=video_id,
                    frame_id=frame_id,
                    file_name=f'{video}/{frame}',
                    height=height,
                    width=width))
        out['videos'].append(
            dict(
                id=video_id, name=video, width=sizes[0][0],
                height=sizes[0][1]))
    return out
