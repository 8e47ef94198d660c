"""Fuzzing of the annotation checks with single-field corruptions.

A valid annotation file is corrupted a few hundred times, one field (or
one entry, key or stretch of text) at a time, with a fixed seed. Every
load must either succeed or raise :class:`VISDatasetError`: nothing else
(no KeyError, TypeError, assertion or pycocotools error) may escape.
"""
import copy
import json
import os.path as osp
import random
import traceback
from typing import Any, List, Tuple

import numpy as np
from mmdet.registry import DATASETS
from mmengine.config import Config
from pycocotools import mask as mask_utils

from mmvis_msts.datasets.converters import convert_raw_vis
from mmvis_msts.datasets.synthetic import DEFAULT_CLASSES
from mmvis_msts.datasets.validation import (VISDatasetError, check_annotations,
                                            load_json)

SEED = 0
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTHETIC_CONFIG = osp.join(REPO, 'configs/_base_/datasets/synthetic_vis.py')
NUM_CLIP_FRAMES = Config.fromfile(SYNTHETIC_CONFIG).num_clip_frames
#: Values a field is set to: other types, edge numbers, empty containers.
VALUES = [
    None, True, 0, -1, 1, 2, 1.5, 10**12,
    float('nan'), '', 'x', '0', [], [0, 0, 0], [1, 2, 3, 4], {},
    dict(size=[1, 1], counts='1')
]

Path = Tuple[Any, ...]


def field_paths(obj: Any, prefix: Path = ()) -> List[Path]:
    """The path (keys and indices) of every value inside ``obj``."""
    paths = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) \
        if isinstance(obj, list) else ()
    for key, value in items:
        paths.append(prefix + (key, ))
        paths += field_paths(value, prefix + (key, ))
    return paths


def parent(obj: Any, path: Path) -> Any:
    for key in path[:-1]:
        obj = obj[key]
    return obj


def corrupt_value(value: Any, rng: random.Random) -> Any:
    """A near miss of ``value`` (a cut string, a shifted number) or an
    unrelated value."""
    if isinstance(value, str) and value and rng.random() < 0.6:
        cut = rng.randrange(len(value))
        if rng.random() < 0.5:
            return value[:cut]
        return value[:cut] + rng.choice('~ !0O/') + value[cut + 1:]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and rng.random() < 0.6:
        return rng.choice([value + 1, value - 1, -value, value * 1000])
    return copy.deepcopy(rng.choice(VALUES))


def mutate(ann: dict, rng: random.Random) -> Tuple[str, Any]:
    """One random corruption of ``ann``: (description, json text)."""
    ann = copy.deepcopy(ann)
    op = rng.choice(['set'] * 6 + ['delete'] * 2 + ['duplicate', 'text'])
    if op == 'text':
        text = json.dumps(ann)
        cut = rng.randrange(len(text))
        if rng.random() < 0.5:
            return f'text cut at {cut}', text[:cut]
        return (f'text char {cut} replaced',
                text[:cut] + rng.choice('}],:"x') + text[cut + 1:])
    if op == 'duplicate':
        key = rng.choice([
            k for k in ('videos', 'images', 'annotations', 'categories')
            if k in ann
        ])
        entry = rng.choice(ann[key])
        ann[key].insert(rng.randrange(len(ann[key]) + 1), copy.deepcopy(entry))
        return f'{key} entry {entry.get("id")} repeated', json.dumps(ann)
    path = rng.choice(field_paths(ann))
    container = parent(ann, path)
    if op == 'delete':
        del container[path[-1]]
        return f'delete {path}', json.dumps(ann)
    container[path[-1]] = corrupt_value(container[path[-1]], rng)
    return f'set {path} = {container[path[-1]]!r}'[:200], json.dumps(ann)


def run_fuzz(base: dict, load, count: int) -> Tuple[int, int, set]:
    """Load ``count`` corruptions of ``base``; fail on any other error.

    Returns:
        tuple[int, int, set]: Loads that succeeded, that raised
        VISDatasetError, and the problem kinds seen.
    """
    rng = random.Random(SEED)
    ok = refused = 0
    kinds, escaped = set(), []
    for i in range(count):
        what, text = mutate(base, rng)
        try:
            load(text, strict=i % 2 == 0)
            ok += 1
        except VISDatasetError as error:
            refused += 1
            kinds.update(p.kind for p in error.problems)
        except Exception:  # noqa: B902 anything else is the bug sought
            escaped.append(f'{i}: {what}\n{traceback.format_exc(limit=3)}')
    assert not escaped, '\n'.join(escaped[:5])
    return ok, refused, kinds


def test_dataset_loads_or_raises_dataset_error(tmp_path, make_vis_dataset):
    """Through the training dataset and pipeline of the tiny configs: what
    builds must also give a clip of every video."""
    root = str(tmp_path)
    ann_file = make_vis_dataset(root, [('a', 3), ('b', 2), ('c', 1)],
                                DEFAULT_CLASSES)
    with open(ann_file) as f:
        base = json.load(f)
    train = Config.fromfile(SYNTHETIC_CONFIG).train_dataloader.dataset
    random.seed(SEED)  # the pipeline's clip sampling

    def load(text: str, strict: bool) -> None:
        with open(ann_file, 'w') as f:
            f.write(text)
        dataset = DATASETS.build(
            dict(
                train,
                data_root=root,
                serialize_data=False,  # skips a gc.collect() per build
                strict=strict))
        for i in range(len(dataset)):
            assert dataset[i]['inputs'].shape[0] == NUM_CLIP_FRAMES

    ok, refused, kinds = run_fuzz(base, load, 300)
    # both outcomes, and many kinds of problems, were met
    assert ok > 30 and refused > 100, (ok, refused)
    assert len(kinds) >= 12, kinds


def _raw_dataset() -> dict:
    """Raw YouTube-VIS json: videos of 3 and 2 frames (24x32), 3 tracks."""
    masks = []
    for x in (2, 9, 16):
        mask = np.zeros((24, 32), np.uint8)
        mask[4:10, x:x + 6] = 1
        rle = mask_utils.encode(np.asfortranarray(mask))
        masks.append(dict(size=[24, 32], counts=rle['counts'].decode()))
    box = [[x, 4, 6, 6] for x in (2, 9, 16)]

    def track(track_id, video_id, category_id, frames):
        return dict(
            id=track_id,
            video_id=video_id,
            category_id=category_id,
            iscrowd=0,
            segmentations=[
                masks[f] if f is not None else None for f in frames
            ],
            bboxes=[box[f] if f is not None else None for f in frames],
            areas=[36 if f is not None else None for f in frames])

    return dict(
        categories=[dict(id=i + 1, name=n) for i, n in enumerate('abc')],
        videos=[
            dict(
                id=1,
                width=32,
                height=24,
                file_names=['v1/0.jpg', 'v1/1.jpg', 'v1/2.jpg']),
            dict(
                id=2, width=32, height=24, file_names=['v2/0.jpg', 'v2/1.jpg'])
        ],
        annotations=[
            track(1, 1, 1, [0, 1, 2]),
            track(2, 1, 3, [None, 2, 2]),
            track(3, 2, 2, [1, None])
        ])


def test_raw_converter_converts_or_raises_dataset_error(tmp_path):
    base = _raw_dataset()
    assert not check_annotations(base, 'raw.json')
    path = str(tmp_path / 'raw.json')

    def load(text: str, strict: bool) -> None:
        with open(path, 'w') as f:
            f.write(text)
        out = convert_raw_vis(load_json(path), source=path)
        # what converts is a valid COCO-video json (with or without
        # annotations: a raw valid split has none)
        problems = check_annotations(
            out, 'out.json', test_mode=True, fmt='cocovid')
        assert not [p for p in problems if p.fatal], problems

    ok, refused, kinds = run_fuzz(base, load, 300)
    assert ok > 30 and refused > 100, (ok, refused)
    assert 'segmentation_length' in kinds and 'bad_segmentation' in kinds
