"""Build-time checks of the VIS datasets: one test per kind of bad data.

Every case plants one fault in the tiny data set of ``make_vis_dataset``
(videos ``a`` (id 1, 3 frames, image ids 1-3) and ``b`` (id 2, 2 frames,
image ids 4-5), 48x64 frames, two objects per frame: annotation ids 1-10
in frame order, category 1 then 2, instance ids 11/12 and 21/22). A strict
build must raise :class:`VISDatasetError` naming the file and the item; a
non-strict one must warn about it, say it is dropped, count it at the end
and leave the item out.
"""
import json
import logging
import os
import os.path as osp
import re
from typing import Callable, List, NamedTuple, Tuple

import numpy as np
import pytest
from mmdet.registry import TRANSFORMS
from mmengine.logging import MMLogger
from PIL import Image
from pycocotools import mask as mask_utils

from mmvis_msts.datasets import CheckedYouTubeVISDataset, SyntheticVISDataset
from mmvis_msts.datasets.synthetic import DEFAULT_CLASSES
from mmvis_msts.datasets.validation import (FATAL, WARNING, Problem,
                                            VISDatasetError, check_annotations,
                                            rle_string_totals)

VIDEOS = [('a', 3), ('b', 2)]
HEIGHT, WIDTH = 48, 64


class Data(NamedTuple):
    root: str
    ann_file: str
    ann: dict

    def save(self) -> None:
        with open(self.ann_file, 'w') as f:
            json.dump(self.ann, f)

    def frame(self, name: str) -> str:
        return osp.join(self.root, 'train', 'JPEGImages', name)

    def annotation(self, ann_id: int) -> dict:
        return next(a for a in self.ann['annotations'] if a['id'] == ann_id)


@pytest.fixture
def data(tmp_path, make_vis_dataset) -> Data:
    root = str(tmp_path)
    ann_file = make_vis_dataset(root, VIDEOS, DEFAULT_CLASSES)
    with open(ann_file) as f:
        return Data(root, ann_file, json.load(f))


class _Records(logging.Handler):

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings_logged():
    """The messages of the warnings logged by the datasets."""
    handler = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def build(data: Data, **kwargs) -> SyntheticVISDataset:
    return SyntheticVISDataset(
        data_root=data.root,
        ann_file='annotations/train.json',
        data_prefix=dict(img_path='train/JPEGImages'),
        pipeline=[],
        serialize_data=False,  # skips a gc.collect() per build
        **kwargs)


def instances(dataset) -> set:
    """(frame file name, instance id) of every instance loaded."""
    return {(frame['file_name'], inst['instance_id'])
            for i in range(len(dataset))
            for frame in dataset.get_data_info(i)['images']
            for inst in frame['instances']}


def frame_names(dataset) -> set:
    return {
        frame['file_name']
        for i in range(len(dataset))
        for frame in dataset.get_data_info(i)['images']
    }


def write_image(path: str, image: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path)


# --- the planted faults -----------------------------------------------


def unknown_video(data: Data) -> None:
    data.annotation(4)['video_id'] = 99


def truncated_rle(data: Data) -> None:
    rle = data.annotation(3)['segmentation']
    rle['counts'] = rle['counts'][:-2]


def garbage_rle(data: Data) -> None:
    data.annotation(3)['segmentation']['counts'] = 'hello world'


def rle_of_other_size(data: Data) -> None:
    mask = np.zeros((HEIGHT + 2, WIDTH), np.uint8, order='F')
    rle = mask_utils.encode(mask)
    data.annotation(3)['segmentation'] = dict(
        size=[HEIGHT + 2, WIDTH], counts=rle['counts'].decode())


def short_polygon(data: Data) -> None:
    data.annotation(3)['segmentation'] = [[1, 1, 5, 1]]


def box_outside(data: Data) -> None:
    data.annotation(5)['bbox'] = [60, 6, 12, 10]


def unknown_category(data: Data) -> None:
    data.annotation(6)['category_id'] = 9


def category_not_in_classes(data: Data) -> None:
    data.ann['categories'].append(dict(id=5, name='hexagon'))
    data.annotation(6)['category_id'] = 5


def duplicate_annotation_id(data: Data) -> None:
    data.annotation(6)['id'] = 5


def zero_instance_id(data: Data) -> None:
    data.annotation(6)['instance_id'] = 0


def json_frame_size(data: Data) -> None:
    data.ann['images'][1]['height'] = 40


def disk_frame_size(data: Data) -> None:
    write_image(data.frame('a/00001.jpg'), np.zeros((40, WIDTH), np.uint8))


def missing_frame(data: Data) -> None:
    os.remove(data.frame('b/00001.jpg'))


def truncated_jpeg(data: Data) -> None:
    with open(data.frame('a/00001.jpg'), 'rb') as f:
        head = f.read()
    with open(data.frame('a/00001.jpg'), 'wb') as f:
        f.write(head[:len(head) // 2])


def not_an_image(data: Data) -> None:
    with open(data.frame('a/00001.jpg'), 'w') as f:
        f.write('not a jpeg')


def frames_out_of_order(data: Data) -> None:
    images = data.ann['images']
    images[0]['frame_id'], images[1]['frame_id'] = 1, 0


class Case(NamedTuple):
    plant: Callable[[Data], None]
    kind: str
    where: str  # in the message, after the file name
    gone: Tuple[str, object]  # what a non-strict build leaves out
    frame_check: str = 'exists'


CASES = {
    'unknown video':
    Case(unknown_video, 'unknown_video',
         "video 99, annotation 4, frame 'a/00001.jpg'",
         ('instance', ('a/00001.jpg', 12))),
    'truncated RLE':
    Case(truncated_rle, 'bad_segmentation',
         "video 1, annotation 3, frame 'a/00001.jpg'",
         ('instance', ('a/00001.jpg', 11))),
    'garbage RLE':
    Case(garbage_rle, 'bad_segmentation', 'annotation 3',
         ('instance', ('a/00001.jpg', 11))),
    'RLE of another size':
    Case(rle_of_other_size, 'bad_segmentation',
         'annotation 3.*: RLE size \\[50, 64\\] differs',
         ('instance', ('a/00001.jpg', 11))),
    'short polygon':
    Case(short_polygon, 'bad_segmentation',
         'annotation 3.*polygon 0 has 4 coordinates',
         ('instance', ('a/00001.jpg', 11))),
    'box outside the frame':
    Case(box_outside, 'box_outside_frame', 'annotation 5.*reaches outside',
         ('instance', ('a/00002.jpg', 11))),
    'unknown category':
    Case(unknown_category, 'unknown_category',
         'annotation 6, .*: category_id 9 is not in',
         ('instance', ('a/00002.jpg', 12))),
    'category not in the classes':
    Case(category_not_in_classes, 'category_not_in_classes',
         "category 5 'hexagon' is not in the classes: its 1 annotations",
         ('instance', ('a/00002.jpg', 12))),
    'duplicate annotation id':
    Case(duplicate_annotation_id, 'duplicate_annotation_id',
         'annotation 5.*repeats the id 5', ('instance', ('a/00002.jpg', 12))),
    'instance id 0':
    Case(zero_instance_id, 'bad_annotation', 'annotation 6.*instance_id=0',
         ('instance', ('a/00002.jpg', 12))),
    'frame sizes differ in the json':
    Case(json_frame_size, 'frame_size_mismatch',
         "video 1, frame 'a/00001.jpg': the frame is 40x64",
         ('frame', 'a/00001.jpg')),
    'frame sizes differ on disk':
    Case(
        disk_frame_size, 'frame_size_mismatch',
        "frame 'a/00001.jpg': .*a/00001.jpg is 40x64 \\(HxW\\), the json "
        'says 48x64', ('frame', 'a/00001.jpg'), 'header'),
    'missing frame':
    Case(missing_frame, 'missing_frame',
         "video 2, frame 'b/00001.jpg': .*does not exist",
         ('frame', 'b/00001.jpg')),
    'truncated JPEG':
    Case(truncated_jpeg, 'corrupt_frame',
         "frame 'a/00001.jpg': .*(?i:truncated)", ('frame', 'a/00001.jpg'),
         'decode'),
    'not an image':
    Case(not_an_image, 'corrupt_frame',
         "frame 'a/00001.jpg': .*cannot identify", ('frame', 'a/00001.jpg'),
         'header'),
    'frames out of order':
    Case(frames_out_of_order, 'frame_order',
         'video 1: frame_ids \\[1, 0, 2\\]', ('video', 1)),
}
CASE_IDS = [name.replace(' ', '-') for name in CASES]


def present(dataset, what: Tuple[str, object]) -> bool:
    kind, value = what
    if kind == 'instance':
        return value in instances(dataset)
    if kind == 'frame':
        return value in frame_names(dataset)
    return value in {
        dataset.get_data_info(i)['video_id']
        for i in range(len(dataset))
    }


@pytest.mark.parametrize('case', list(CASES.values()), ids=CASE_IDS)
def test_strict_build_names_the_fault(data, case):
    assert present(build(data, frame_check=case.frame_check), case.gone)
    case.plant(data)
    data.save()
    with pytest.raises(VISDatasetError) as error:
        build(data, frame_check=case.frame_check)
    message = str(error.value)
    assert message.startswith(data.ann_file)
    assert any(p.kind == case.kind and p.fatal for p in error.value.problems)
    # the problem's line: the file, then the video / annotation / frame
    assert any(line.strip().startswith(data.ann_file + ': ')
               for line in message.splitlines()[1:])
    assert re.search(case.where, message), message


@pytest.mark.parametrize('case', list(CASES.values()), ids=CASE_IDS)
def test_non_strict_build_warns_and_drops(data, case, warnings_logged):
    case.plant(data)
    data.save()
    dataset = build(data, strict=False, frame_check=case.frame_check)
    found = [p for p in dataset.data_problems if p.kind == case.kind]
    assert found and all(p.severity == FATAL for p in found)
    ours = [m for m in warnings_logged if m.startswith(data.ann_file)]
    # a warning per item, said to be dropped, then the count
    assert any(
        re.search(case.where, m) and m.endswith(' (dropped)')
        for m in ours[:-1]), ours
    assert ours[-1].startswith(f'{data.ann_file}: {len(found)} fatal')
    assert f'{case.kind}: {len(found)}' in ours[-1]
    assert not present(dataset, case.gone)
    assert len(dataset) >= 1  # the rest is kept


@pytest.mark.parametrize('fault', ['malformed', 'truncated'])
@pytest.mark.parametrize('strict', [True, False])
def test_invalid_json_names_the_file(data, fault, strict):
    with open(data.ann_file) as f:
        text = f.read()
    if fault == 'malformed':
        text = text.replace('"videos": [', '"videos" [', 1)
    else:
        text = text[:len(text) * 2 // 3]
    with open(data.ann_file, 'w') as f:
        f.write(text)
    with pytest.raises(VISDatasetError) as error:
        build(data, strict=strict)
    message = str(error.value)
    assert message.startswith(data.ann_file)
    assert 'not valid json' in message and 'line 1, column' in message
    assert ('truncated?' in message) == (fault == 'truncated')
    assert [p.kind for p in error.value.problems] == ['invalid_json']


@pytest.mark.parametrize('key', ['videos', 'annotations', 'categories'])
@pytest.mark.parametrize('strict', [True, False])
def test_missing_top_level_key(data, key, strict):
    del data.ann[key]
    data.save()
    with pytest.raises(VISDatasetError, match=f"has no '{key}' list"):
        build(data, strict=strict)


def test_test_split_may_lack_annotations(data, warnings_logged):
    del data.ann['annotations']
    data.save()
    dataset = build(data, test_mode=True)
    assert len(dataset) == 2
    assert [p.kind for p in dataset.data_problems] == ['no_annotations']
    assert any('format_only=True' in m for m in warnings_logged)


def test_duplicate_video_id(data):
    data.ann['videos'][1]['id'] = 1
    data.save()
    with pytest.raises(VISDatasetError) as error:
        build(data)
    assert any(p.kind == 'duplicate_video_id' and p.video_id == 1
               for p in error.value.problems)
    assert 'video 1: videos[1] repeats the id' in str(error.value)
    # non-strict: the second entry goes, and with it the frames that
    # pointed at id 2, which no video has any more
    dataset = build(data, strict=False)
    assert [dataset.get_data_info(i)['video_id']
            for i in range(len(dataset))] == [1]


@pytest.mark.parametrize('test_mode', [True, False])
def test_video_without_annotations_is_kept_and_said(data, warnings_logged,
                                                    test_mode):
    data.ann['annotations'] = [
        a for a in data.ann['annotations'] if a['video_id'] != 2
    ]
    data.save()
    dataset = build(data, test_mode=test_mode)
    [problem] = dataset.data_problems
    assert (problem.kind, problem.severity, problem.video_id) == \
        ('video_without_annotations', WARNING, 2)
    assert any(
        m.startswith(f'{data.ann_file}: video 2: ') for m in warnings_logged)
    videos = [dataset.get_data_info(i) for i in range(len(dataset))]
    if test_mode:  # tested as it is
        assert [v['video_id'] for v in videos] == [1, 2]
        assert videos[1]['video_length'] == 2
    else:  # no clip to learn from: mmdet would keep it without frames
        assert [v['video_id'] for v in videos] == [1]


def test_one_frame_video_is_said(tmp_path, make_vis_dataset):
    root = str(tmp_path)
    ann_file = make_vis_dataset(root, [('a', 3), ('c', 1)], DEFAULT_CLASSES)
    dataset = build(Data(root, ann_file, {}))
    assert [(p.kind, p.severity, p.video_id) for p in dataset.data_problems
            ] == [('one_frame_video', WARNING, 2)]
    assert len(dataset) == 2


def test_grayscale_and_rgba_frames_are_read_as_bgr(data):
    write_image(
        data.frame('a/00000.jpg'), np.full((HEIGHT, WIDTH), 90, np.uint8))
    rgba = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    write_image(data.frame('b/00000.png'), rgba)
    data.ann['images'][3]['file_name'] = 'b/00000.png'
    data.save()
    dataset = build(data, frame_check='header')  # strict: warnings only
    kinds = {(p.kind, p.video_id) for p in dataset.data_problems}
    assert kinds == {('grayscale_frames', 1), ('alpha_frames', 2)}
    assert all(p.severity == WARNING for p in dataset.data_problems)
    # the configs' loader converts both to 3 channels
    load = TRANSFORMS.build(dict(type='LoadImageFromFile'))
    gray = load(dict(img_path=data.frame('a/00000.jpg')))['img']
    assert gray.shape == (HEIGHT, WIDTH, 3)
    assert (gray == 90).all()
    colour = load(dict(img_path=data.frame('b/00000.png')))['img']
    assert colour.shape == (HEIGHT, WIDTH, 3)
    assert colour[0, 0].tolist() == [0, 0, 200]  # BGR of RGB (200, 0, 0)


def test_classes_must_match_the_categories(data):
    data.ann['categories'][0], data.ann['categories'][1] = \
        data.ann['categories'][1], data.ann['categories'][0]
    data.save()
    for strict in (True, False):
        with pytest.raises(VISDatasetError, match='order'):
            build(data, strict=strict)
    del data.ann['categories'][0]
    data.save()
    with pytest.raises(VISDatasetError, match="classes \\('triangle',\\)"):
        build(data, strict=False)


def test_youtube_vis_drop_in(data):
    classes = ('person', 'giant_panda')
    data.ann['categories'] = [
        dict(id=1, name='person'),
        dict(id=2, name='giant_panda')
    ]
    unknown_video(data)
    data.save()
    common = dict(
        dataset_version='2019',
        metainfo=dict(classes=classes),
        data_root=data.root,
        ann_file='annotations/train.json',
        data_prefix=dict(img_path='train/JPEGImages'),
        pipeline=[])
    with pytest.raises(VISDatasetError, match='annotation 4'):
        CheckedYouTubeVISDataset(**common)
    dataset = CheckedYouTubeVISDataset(strict=False, **common)
    assert ('a/00001.jpg', 12) not in instances(dataset)
    assert ('a/00001.jpg', 11) in instances(dataset)


def test_frame_check_is_validated(data):
    with pytest.raises(ValueError, match="'pixels'"):
        build(data, frame_check='pixels')


def test_rle_totals_match_pycocotools():
    rng = np.random.default_rng(0)
    masks = [(rng.random((h, w)) < p).astype(np.uint8)
             for h, w, p in [(1, 1, 1), (7, 5, 0.5), (48, 64,
                                                      0.1), (300, 200,
                                                             0.5), (40, 40,
                                                                    0.0)]]
    yy, xx = np.mgrid[:720, :1280]
    masks.append(((yy - 360)**2 / 9e4 + (xx - 640)**2 / 25e4
                  < 1).astype(np.uint8))
    strings = [
        mask_utils.encode(np.asfortranarray(m))['counts'].decode()
        for m in masks
    ]
    totals = rle_string_totals(strings)
    assert totals.tolist() == [m.size for m in masks]
    # a cut string ends inside a run or covers fewer pixels
    cut = rle_string_totals([s[:-1] for s in strings[1:]])
    assert all(t != m.size for t, m in zip(cut, masks[1:]))
    assert rle_string_totals(['', 'é0', '0 1', '0\x7f']).tolist() == [-1] * 4


def _raw() -> dict:
    """A raw YouTube-VIS dict: video 5 of 3 frames 20x30, one track."""
    mask = np.zeros((20, 30), np.uint8)
    mask[2:6, 3:9] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle = dict(size=[20, 30], counts=rle['counts'].decode())
    return dict(
        categories=[dict(id=1, name='circle')],
        videos=[
            dict(
                id=5,
                width=30,
                height=20,
                file_names=[f'v/{i}.jpg' for i in range(3)])
        ],
        annotations=[
            dict(
                id=7,
                video_id=5,
                category_id=1,
                iscrowd=0,
                segmentations=[rle, None, dict(rle)],
                bboxes=[[3, 2, 6, 4], None, [3, 2, 6, 4]],
                areas=[24, None, 24])
        ])


def _raw_problems(raw: dict) -> List[Problem]:
    return check_annotations(raw, 'raw.json', classes=('circle', ))


@pytest.mark.parametrize(
    'plant, kind, where',
    [(lambda t: t.update(segmentations=t['segmentations'][:2]),
      'segmentation_length', 'video 5, annotation 7: 2 segmentations'),
     (lambda t: t.update(video_id=6), 'unknown_video', 'annotation 7'),
     (lambda t: t['bboxes'].__setitem__(2, [26, 2, 6, 4]), 'box_outside_frame',
      "annotation 7, frame 'v/2.jpg'"),
     (lambda t: t['segmentations'][0].update(counts='0'), 'bad_segmentation',
      "annotation 7, frame 'v/0.jpg'"),
     (lambda t: t['bboxes'].__setitem__(1, [3, 2, 6, 4]), 'bad_annotation',
      "frame 'v/1.jpg': has segmentation=None")],
    ids=['short-list', 'unknown-video', 'box-outside', 'bad-rle', 'no-mask'])
def test_raw_format(plant, kind, where):
    raw = _raw()
    assert _raw_problems(raw) == []
    plant(raw['annotations'][0])
    fatal = [p for p in _raw_problems(raw) if p.fatal]
    assert [p.kind for p in fatal] == [kind]
    assert where in str(fatal[0])


def test_problem_rejects_unknown_kinds():
    with pytest.raises(KeyError, match='no_such_kind'):
        Problem('no_such_kind', FATAL, 'f.json', 'message')


def test_frame_check_none_skips_the_disk(data):
    os.remove(data.frame('b/00001.jpg'))
    assert len(build(data, frame_check='none')) == 2
